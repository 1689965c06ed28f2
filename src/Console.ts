/**
 * The operator console: a web UI and a JSON API (`ConsoleApi`) over the
 * database the runtimes use, with the runtime's metrics for Prometheus on
 * `/metrics`. Add `Console.layer` to an application's Layer graph (it then
 * shows typed state rebuilt with the application's workflow definitions), or
 * run `npx ironflow console`.
 *
 * Safe by default: it binds to 127.0.0.1 and answers only to loopback host
 * names; binding elsewhere requires a token (`IRONFLOW_CONSOLE_TOKEN`); every
 * write is a POST checked for its CSRF token and origin; `readOnly` refuses
 * writes; pages run no scripts.
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServer from "@effect/platform/HttpServer"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { createServer } from "node:http"
import { ConsoleApi } from "./ConsoleApi.js"
import * as Handlers from "./internal/console/handlers.js"
import { guard, makeSecrets } from "./internal/console/security.js"
import type * as StateMachineView from "./StateMachineView.js"
import * as WorkflowService from "./WorkflowService.js"
import { WorkflowStore } from "./WorkflowStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Interface to bind (default 127.0.0.1). Anything but a loopback address requires `token`. */
  readonly host?: string | undefined
  /** Port (default 7420; 0 picks a free one). */
  readonly port?: number | undefined
  /** Required to sign in (and then on every request) when set; required when `host` is not loopback. */
  readonly token?: Redacted.Redacted | undefined
  /** Hide and refuse every write (retrying dead letters). */
  readonly readOnly?: boolean | undefined
  /** How often the overview page reloads itself (default 5 s). */
  readonly refreshSeconds?: number | undefined
  /** Minutes of throughput on the overview (default 15). */
  readonly throughputMinutes?: number | undefined
  /** State-machine views whose diagrams the instance pages draw, with the current state marked. */
  readonly views?: ReadonlyArray<StateMachineView.StateMachineView<any>> | undefined
}

/**
 * The console cannot start as configured.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConsoleError extends Data.TaggedError("ConsoleError")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

/**
 * A running console.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunningConsole {
  /** Where it listens, e.g. `http://127.0.0.1:7420`. */
  readonly url: string
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Console extends Context.Tag("ironflow/Console")<Console, RunningConsole>() {}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultPort = 7420

const loopback = new Set(["127.0.0.1", "::1", "localhost"])

/**
 * `Options` from the environment: `IRONFLOW_CONSOLE_HOST`,
 * `IRONFLOW_CONSOLE_PORT`, `IRONFLOW_CONSOLE_TOKEN` (redacted) and
 * `IRONFLOW_CONSOLE_READ_ONLY`.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  host: Config.string("IRONFLOW_CONSOLE_HOST").pipe(Config.withDefault("127.0.0.1")),
  port: Config.port("IRONFLOW_CONSOLE_PORT").pipe(Config.withDefault(defaultPort)),
  token: Config.option(Config.redacted("IRONFLOW_CONSOLE_TOKEN")).pipe(Config.map(Option.getOrUndefined)),
  readOnly: Config.boolean("IRONFLOW_CONSOLE_READ_ONLY").pipe(Config.withDefault(false))
})

const validate = (options: Options) =>
  Effect.gen(function*() {
    const host = options.host ?? "127.0.0.1"
    const port = options.port ?? defaultPort
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      return yield* new ConsoleError({ reason: `console port ${port} is not a port number (0 to 65535)` })
    }
    if (!loopback.has(host) && options.token === undefined) {
      return yield* new ConsoleError({
        reason:
          `the console binds to ${host}, which is not a loopback address: set IRONFLOW_CONSOLE_TOKEN (or pass token) so that only those who know it can use it`
      })
    }
    const positive = (name: string, value: number | undefined, fallback: number) =>
      value === undefined
        ? Effect.succeed(fallback)
        : Number.isInteger(value) && value >= 1 && value <= 24 * 60
        ? Effect.succeed(value)
        : Effect.fail(new ConsoleError({ reason: `${name} must be a whole number from 1 to 1440, got ${value}` }))
    return {
      host,
      port,
      refreshSeconds: yield* positive("refreshSeconds", options.refreshSeconds, 5),
      throughputMinutes: yield* positive("throughputMinutes", options.throughputMinutes, 15)
    }
  })

/**
 * Starts the console in the current scope and returns where it listens.
 * Needs the `WorkflowStore`; uses the application's `WorkflowService` when
 * one is in the context (typed state on the instance pages).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<RunningConsole, ConsoleError, WorkflowStore | Scope.Scope> =>
  Effect.gen(function*() {
    const { host, port, refreshSeconds, throughputMinutes } = yield* validate(options)
    const store = yield* WorkflowStore
    const service = yield* Effect.serviceOption(WorkflowService.WorkflowService)
    const secrets = makeSecrets(Option.fromNullable(options.token))
    const settings: Handlers.Settings = {
      sources: { store, service, views: options.views ?? [], throughputMinutes },
      secrets,
      readOnly: options.readOnly === true,
      refreshSeconds
    }
    const api = HttpApiBuilder.api(ConsoleApi).pipe(
      Layer.provide(Handlers.jsonGroup(settings)),
      Layer.provide(Handlers.pageGroup(settings))
    )
    const server = NodeHttpServer.layer(createServer, { host, port })
    const context = yield* Layer.build(
      Layer.merge(HttpApiBuilder.serve(guard(secrets)).pipe(Layer.provide(api)), server).pipe(Layer.provide(server))
    ).pipe(
      Effect.mapError((error) =>
        new ConsoleError({ reason: `the console cannot listen on ${host}:${port}: ${describe(error)}` })
      )
    )
    const address = Context.get(context, HttpServer.HttpServer).address
    const url = address._tag === "TcpAddress"
      ? `http://${address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname}:${address.port}`
      : `unix:${address.path}`
    yield* Effect.logInfo(
      `ironflow console listening on ${url}${settings.readOnly ? " (read-only)" : ""}${
        Option.isSome(secrets.token) ? " (token required)" : ""
      }`
    )
    return { url }
  })

const describe = (error: unknown) => {
  const cause = typeof error === "object" && error !== null && "cause" in error ? error.cause : error
  return cause instanceof Error ? cause.message : String(cause)
}

/**
 * The console as a layer of an application: serves while the layer's scope
 * is open, and provides where it listens as the `Console` service.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Console, ConsoleError, WorkflowStore> =>
  Layer.scoped(Console, make(options))

/**
 * The console configured from the environment (`config`), with the views
 * and other options given here.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  options: Pick<Options, "views" | "refreshSeconds" | "throughputMinutes"> = {}
): Layer.Layer<Console, ConsoleError | ConfigError.ConfigError, WorkflowStore> =>
  Layer.scoped(Console, Effect.flatMap(config, (fromEnv) => make({ ...fromEnv, ...options })))
