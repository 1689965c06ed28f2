/**
 * Plain HTTP requests to a console (node:http, so any header can be sent,
 * `Host` and `Origin` included, and redirects are never followed).
 */
import { Effect } from "effect"
import { request as httpRequest } from "node:http"

export interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  readonly body: string
}

export const request = (
  url: string,
  options: {
    readonly method?: "GET" | "POST"
    readonly headers?: Readonly<Record<string, string>>
    readonly body?: string
  } = {}
): Effect.Effect<Reply> =>
  Effect.async<Reply>((resume) => {
    const req = httpRequest(url, { method: options.method ?? "GET", headers: options.headers }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      res.on("end", () =>
        resume(Effect.succeed({
          status: res.statusCode ?? 0,
          headers: res.headers as Reply["headers"],
          body: Buffer.concat(chunks).toString("utf8")
        })))
    })
    req.on("error", (error) => resume(Effect.die(error)))
    if (options.body !== undefined) req.write(options.body)
    req.end()
  })

export const getJson = <A = any>(url: string, headers: Readonly<Record<string, string>> = {}) =>
  Effect.map(request(url, { headers }), (reply) => {
    if (reply.status !== 200) throw new Error(`GET ${url}: ${reply.status} ${reply.body}`)
    return JSON.parse(reply.body) as A
  })

/** A form POST as a browser sends it (urlencoded), `fields` in order (repeat a name for several values). */
export const postForm = (
  url: string,
  fields: ReadonlyArray<readonly [string, string]>,
  headers: Readonly<Record<string, string>> = {}
) =>
  request(url, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields.map(([k, v]): [string, string] => [k, v])).toString()
  })

/** The CSRF token a page carries. */
export const csrfOf = (page: string): string => {
  const match = /<meta name="csrf-token" content="([^"]+)">/.exec(page)
  if (match === null) throw new Error("no csrf-token meta in the page")
  return match[1]!
}
