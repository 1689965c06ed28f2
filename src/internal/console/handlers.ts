/**
 * The console's endpoints: the JSON group and the page group of
 * `ConsoleApi`, over the same reads (`data.ts`).
 *
 * @internal
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as OpenApi from "@effect/platform/OpenApi"
import * as UrlParams from "@effect/platform/UrlParams"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as ConsoleApi from "../../ConsoleApi.js"
import * as WorkflowMetrics from "../../WorkflowMetrics.js"
import * as Data from "./data.js"
import * as Diagram from "./diagram.js"
import * as Pages from "./pages.js"
import { same, type Secrets, sessionCookieHeader, signedIn } from "./security.js"

/** @internal */
export interface Settings {
  readonly sources: Data.Sources
  readonly secrets: Secrets
  readonly readOnly: boolean
  readonly refreshSeconds: number
}

const readOnlyMessage = "this console is read-only (started with --read-only)"
const csrfMessage = "missing or wrong CSRF token: reload the page and try again"

/** @internal */
export const jsonGroup = (settings: Settings) =>
  HttpApiBuilder.group(ConsoleApi.ConsoleApi, "api", (handlers) =>
    handlers
      .handle("overview", () => Data.overview(settings.sources))
      .handle("instances", ({ urlParams }) => Data.instances(settings.sources, urlParams))
      .handle("instance", ({ urlParams }) => Data.instance(settings.sources, urlParams.type, urlParams.id))
      .handle("deadLetters", ({ urlParams }) => Data.deadLetters(settings.sources, urlParams))
      .handle("retry", ({ headers, payload }) =>
        settings.readOnly
          ? Effect.fail(new ConsoleApi.Forbidden({ message: readOnlyMessage }))
          : !same(headers[ConsoleApi.csrfHeader], settings.secrets.csrfToken)
          ? Effect.fail(new ConsoleApi.Forbidden({ message: csrfMessage }))
          : Data.retry(settings.sources, payload.items))
      .handle("openapi", () => Effect.sync(() => OpenApi.fromApi(ConsoleApi.ConsoleApi)))
      .handle("session", () => Effect.succeed({ csrfToken: settings.secrets.csrfToken, readOnly: settings.readOnly }))
      .handle("metrics", () =>
        settings.sources.store.queueStats.pipe(
          // Database-wide queue gauges, fresh at each scrape (also when no runtime runs in this process).
          Effect.flatMap(WorkflowMetrics.recordQueueStats),
          Effect.zipRight(WorkflowMetrics.prometheus),
          Effect.mapError((error) => new ConsoleApi.Unavailable({ message: error.message }))
        )))

const page = (body: string, status = 200) =>
  HttpServerResponse.text(body, { status, contentType: "text/html; charset=utf-8" })

const param = (request: HttpServerRequest.HttpServerRequest, name: string): string | undefined => {
  const value = new URL(request.url, "http://console.invalid").searchParams.get(name)
  return value === null || value === "" ? undefined : value
}

const integer = (text: string | undefined, min: number, max: number) => {
  if (text === undefined || !/^\d+$/.test(text)) return undefined
  const n = Number(text)
  return n >= min && n <= max ? n : undefined
}

const kind = (text: string | undefined): "effect" | "timer" | undefined =>
  text === "effect" || text === "timer" ? text : undefined

/** Where a form may send the browser back to: a path of this console, nothing else. */
const localPath = (text: string | undefined, fallback: string) =>
  text !== undefined && text.startsWith("/") && !text.startsWith("//") && !text.includes("\\") ? text : fallback

/** @internal */
export const pageGroup = (settings: Settings) => {
  const frame = (request: HttpServerRequest.HttpServerRequest): Pages.Frame => ({
    csrfToken: settings.secrets.csrfToken,
    readOnly: settings.readOnly,
    signedIn: signedIn(settings.secrets, request.headers)
  })
  const orProblem =
    (request: HttpServerRequest.HttpServerRequest) =>
    <E extends { readonly _tag: string; readonly message: string }>(
      self: Effect.Effect<HttpServerResponse.HttpServerResponse, E>
    ) =>
      Effect.catchAll(self, (error) =>
        Effect.succeed(
          page(
            Pages.problem(
              frame(request),
              error._tag === "NotFound" ? "Not found" : "Database unavailable",
              error.message
            ),
            error._tag === "NotFound" ? 404 : 503
          )
        ))
  // The type filter offers the types that have instances: one count, not the whole overview.
  const instanceTypes = settings.sources.store.instanceCounts.pipe(
    Effect.map((counts) => counts.map((c) => c.workflowType)),
    Effect.orElseSucceed(() => [] as ReadonlyArray<string>)
  )
  return HttpApiBuilder.group(ConsoleApi.ConsoleApi, "pages", (handlers) =>
    handlers
      .handleRaw("overview", ({ request }) =>
        Data.overview(settings.sources).pipe(
          Effect.map((o) => page(Pages.overview(o, frame(request), settings.refreshSeconds))),
          orProblem(request)
        ))
      .handleRaw("instances", ({ request }) => {
        const status = param(request, "status")
        const filters = {
          type: param(request, "type"),
          prefix: param(request, "prefix"),
          status: status === "active" || status === "completed" ? status : undefined
        } as const
        return Effect.all([
          Data.instances(settings.sources, {
            ...filters,
            limit: integer(param(request, "limit"), 1, 500),
            offset: integer(param(request, "offset"), 0, Number.MAX_SAFE_INTEGER)
          }),
          instanceTypes
        ]).pipe(
          Effect.map(([result, types]) => page(Pages.instances(result, filters, types, frame(request)))),
          orProblem(request)
        )
      })
      .handleRaw("instance", ({ request }) =>
        Data.instance(settings.sources, param(request, "type") ?? "", param(request, "id") ?? "").pipe(
          Effect.map((detail) => {
            const view = settings.sources.views.find((v) =>
              v.workflow.type === detail.instance.workflowType
            )
            const definition = view?.stateMachine()
            const diagram = definition === undefined
              ? Diagram.eventPath(detail.events.map((e) => eventName(e.payload)))
              : Diagram.stateMachine(definition, detail.status ?? undefined)
            return page(Pages.instance(detail, diagram, frame(request)))
          }),
          orProblem(request)
        ))
      .handleRaw("deadLetters", ({ request }) => {
        const filters = { kind: kind(param(request, "kind")), type: param(request, "type"), id: param(request, "id") }
        const retried = integer(param(request, "retried"), 0, Number.MAX_SAFE_INTEGER)
        const notDead = integer(param(request, "notDead"), 0, Number.MAX_SAFE_INTEGER)
        return Data.deadLetters(settings.sources, {
          ...filters,
          limit: integer(param(request, "limit"), 1, 500),
          offset: integer(param(request, "offset"), 0, Number.MAX_SAFE_INTEGER)
        }).pipe(
          Effect.map((result) =>
            page(Pages.deadLetters(
              result,
              filters,
              retried === undefined ? undefined : { retried, notDead: notDead ?? 0 },
              frame(request)
            ))
          ),
          orProblem(request)
        )
      })
      .handleRaw("retry", ({ request }) =>
        Effect.gen(function*() {
          if (settings.readOnly) return page(Pages.problem(frame(request), "Read-only", readOnlyMessage), 403)
          const form = yield* request.urlParamsBody.pipe(Effect.orElseSucceed(() => UrlParams.empty))
          const csrf = Option.getOrElse(UrlParams.getFirst(form, "csrf"), () => "")
          if (!same(csrf, settings.secrets.csrfToken)) {
            return page(Pages.problem(frame(request), "Refused", csrfMessage), 403)
          }
          // A row's own Retry button names its row in the action (`one`): only that row, whatever is ticked.
          const one = param(request, "one")
          const rows = (one === undefined ? UrlParams.getAll(form, "item") : [one]).flatMap((item) => {
            const at = item.indexOf(":")
            const k = kind(item.slice(0, at))
            return k === undefined ? [] : [{ kind: k, id: item.slice(at + 1) }]
          })
          const result = yield* Data.retry(settings.sources, rows)
          const back = localPath(Option.getOrUndefined(UrlParams.getFirst(form, "back")), "/dead-letters")
          const target = back.startsWith("/dead-letters")
            ? `${back}${
              back.includes("?") ? "&" : "?"
            }retried=${result.retried.length}&notDead=${result.notDead.length}`
            : back
          return HttpServerResponse.redirect(target, { status: 303 })
        }).pipe(orProblem(request)))
      .handleRaw("login", ({ request }) =>
        Effect.succeed(
          Option.isNone(settings.secrets.token)
            ? HttpServerResponse.redirect("/", { status: 303 })
            : page(Pages.login(frame(request), false))
        ))
      .handleRaw("signIn", ({ request }) =>
        Effect.gen(function*() {
          const { session, token } = settings.secrets
          if (Option.isNone(token) || Option.isNone(session)) return HttpServerResponse.redirect("/", { status: 303 })
          const form = yield* request.urlParamsBody.pipe(Effect.orElseSucceed(() => UrlParams.empty))
          const csrf = Option.getOrElse(UrlParams.getFirst(form, "csrf"), () => "")
          const given = Option.getOrElse(UrlParams.getFirst(form, "token"), () => "")
          if (!same(csrf, settings.secrets.csrfToken) || !same(given, Redacted.value(token.value))) {
            yield* Effect.logWarning("console: a sign-in with a wrong token was refused")
            return page(Pages.login(frame(request), true), 401)
          }
          return HttpServerResponse.redirect("/", {
            status: 303,
            headers: { "set-cookie": sessionCookieHeader(session.value) }
          })
        })))
}

/** An event's name for the event-path diagram: its tag, as Schema classes encode it (`_tag` or `type`). */
const eventName = (payload: unknown): string => {
  if (typeof payload !== "object" || payload === null) return "event"
  const record = payload as Record<string, unknown>
  return typeof record._tag === "string" ? record._tag : typeof record.type === "string" ? record.type : "event"
}
