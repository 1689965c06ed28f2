/**
 * The console's guard, around every request:
 *
 * - without a token, only loopback host names are answered (a page on
 *   another site that rebinds its DNS name to 127.0.0.1 gets 403, so it can
 *   neither read pages nor learn the CSRF token);
 * - with a token, every request but the sign-in needs the session cookie
 *   (set by signing in; an HMAC of the token, never the token) or
 *   `Authorization: Bearer <token>`;
 * - a POST from another origin is refused outright, and each write checks
 *   the CSRF token as well (in its handler);
 * - every response forbids scripts, framing and caching.
 *
 * @internal
 */
import type * as Headers from "@effect/platform/Headers"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto"

/** @internal */
export const sessionCookie = "ironflow_console_session"

/** @internal */
export interface Secrets {
  readonly csrfToken: string
  readonly token: Option.Option<Redacted.Redacted>
  /** The cookie value a signed-in browser carries (none without a token). */
  readonly session: Option.Option<string>
}

/** Fresh per process: restarting the console signs everyone out and changes the CSRF token. @internal */
export const makeSecrets = (token: Option.Option<Redacted.Redacted>): Secrets => {
  const salt = randomBytes(32)
  return {
    csrfToken: randomBytes(32).toString("base64url"),
    token,
    session: Option.map(
      token,
      (t) => createHmac("sha256", Redacted.value(t)).update(salt).update("ironflow-console-session").digest("base64url")
    )
  }
}

/** Compares in constant time (over digests, so lengths do not leak either). @internal */
export const same = (a: string, b: string): boolean =>
  timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest())

const loopbackNames = new Set(["127.0.0.1", "localhost", "[::1]", "::1"])

const hostName = (host: string) => {
  try {
    return new URL(`http://${host}`).hostname
  } catch {
    return ""
  }
}

const cookie = (header: string | undefined, name: string) => {
  if (header === undefined) return undefined
  for (const part of header.split(";")) {
    const [key, ...value] = part.trim().split("=")
    if (key === name) return value.join("=")
  }
  return undefined
}

/** Whether the request carries the session cookie or the bearer token (always, without a token). @internal */
export const signedIn = (secrets: Secrets, headers: Headers.Headers): boolean => {
  if (Option.isNone(secrets.token) || Option.isNone(secrets.session)) return true
  const fromCookie = cookie(headers["cookie"], sessionCookie)
  if (fromCookie !== undefined && same(fromCookie, secrets.session.value)) return true
  const authorization = headers["authorization"]
  return authorization !== undefined && authorization.startsWith("Bearer ") &&
    same(authorization.slice("Bearer ".length), Redacted.value(secrets.token.value))
}

/**
 * Browsers say where a request comes from in `Sec-Fetch-Site`; older ones and
 * other clients only in `Origin`, which must then name this host (`null`, an
 * opaque origin, is refused).
 */
const crossOrigin = (headers: Headers.Headers) => {
  const site = headers["sec-fetch-site"]
  if (site !== undefined) return site !== "same-origin" && site !== "none"
  const origin = headers["origin"]
  if (origin === undefined) return false
  try {
    return origin === "null" || new URL(origin).host !== headers["host"]
  } catch {
    return true
  }
}

const securityHeaders = {
  "content-security-policy":
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "same-origin",
  "cache-control": "no-store"
}

const refuse = (status: number, message: string, asJson: boolean) =>
  asJson
    ? HttpServerResponse.unsafeJson({ _tag: status === 401 ? "Unauthorized" : "Forbidden", message }, { status })
    : HttpServerResponse.text(message, { status })

/** The guard as an HTTP middleware. @internal */
export const guard = (secrets: Secrets) => (app: HttpApp.Default): HttpApp.Default =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const path = request.url.split("?")[0]
    const asJson = path.startsWith("/api/") || path === "/metrics"
    // The app sends its response before this middleware sees it: headers go on through a pre-response handler.
    const refusal = yield* Effect.gen(function*() {
      if (Option.isNone(secrets.token) && !loopbackNames.has(hostName(request.headers["host"] ?? ""))) {
        return refuse(403, "this console answers only to loopback host names (set a token to serve others)", asJson)
      }
      if (request.method === "POST" && crossOrigin(request.headers)) {
        return refuse(403, "cross-origin writes are refused", asJson)
      }
      if (path !== "/login" && !signedIn(secrets, request.headers)) {
        return asJson
          ? refuse(401, "sign in: send Authorization: Bearer <IRONFLOW_CONSOLE_TOKEN>", true)
          : HttpServerResponse.redirect("/login", { status: 303 })
      }
      return undefined
    })
    if (refusal !== undefined) return HttpServerResponse.setHeaders(refusal, securityHeaders)
    yield* HttpApp.appendPreResponseHandler((_request, response) =>
      Effect.succeed(HttpServerResponse.setHeaders(response, securityHeaders))
    )
    return yield* app
  })

/** The session cookie for a signed-in browser. @internal */
export const sessionCookieHeader = (session: string): string =>
  `${sessionCookie}=${session}; HttpOnly; SameSite=Strict; Path=/`
