/**
 * `ironflow console`: serves the web console (`Console.make`) over the
 * database the other commands reach, until interrupted. With `--workflows
 * MODULE` the instance pages show typed state and state-machine diagrams.
 * The token comes only from `IRONFLOW_CONSOLE_TOKEN`, never from an argument
 * (arguments are visible to every user of the machine).
 *
 * @internal
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as IronflowConsole from "../../Console.js"
import * as StateMachineView from "../../StateMachineView.js"
import * as Workflow from "../../Workflow.js"
import { WorkflowRegistry } from "../../WorkflowRegistry.js"
import * as WorkflowRegistryModule from "../../WorkflowRegistry.js"
import * as WorkflowService from "../../WorkflowService.js"
import type * as WorkflowStore from "../../WorkflowStore.js"

interface Connection {
  readonly databaseUrl: Option.Option<Redacted.Redacted>
  readonly dataDir: Option.Option<string>
}

/** What the command borrows from `Cli.ts`. */
export interface Shared<EStore, ELoad> {
  readonly connection: {
    readonly databaseUrl: Options.Options<Option.Option<Redacted.Redacted>>
    readonly dataDir: Options.Options<Option.Option<string>>
  }
  readonly workflows: Options.Options<Option.Option<string>>
  readonly withStore: <A, E>(
    options: Connection,
    f: (store: WorkflowStore.WorkflowStore["Type"]) => Effect.Effect<A, E, WorkflowStore.WorkflowStore>
  ) => Effect.Effect<A, E | EStore>
  readonly loadModule: (module: Option.Option<string>) => Effect.Effect<ReadonlyArray<unknown>, ELoad>
  /** A bad argument: exit code 2. */
  readonly usage: (reason: string) => Error
}

const withDefinitions = <A, E, R>(
  workflows: ReadonlyArray<Workflow.Any>,
  self: Effect.Effect<A, E, R>
) =>
  workflows.length === 0
    ? self as Effect.Effect<A, E, Exclude<R, WorkflowService.WorkflowService>>
    : Effect.gen(function*() {
      // Only the service is needed (no handler runs here): it rebuilds typed state for the pages.
      const registry = yield* WorkflowRegistryModule.make(workflows as ReadonlyArray<Workflow.WithoutEffects>)
      const service = yield* WorkflowService.make.pipe(Effect.provideService(WorkflowRegistry, registry))
      return yield* Effect.provideService(self, WorkflowService.WorkflowService, service)
    })

/** @internal */
export const make = <EStore, ELoad>(shared: Shared<EStore, ELoad>) =>
  Command.make(
    "console",
    {
      ...shared.connection,
      workflows: shared.workflows,
      host: Options.text("host").pipe(
        Options.withDescription(
          "Interface to bind (default IRONFLOW_CONSOLE_HOST or 127.0.0.1); anything but loopback needs IRONFLOW_CONSOLE_TOKEN"
        ),
        Options.optional
      ),
      port: Options.integer("port").pipe(
        Options.withDescription(`Port (default IRONFLOW_CONSOLE_PORT or ${IronflowConsole.defaultPort}; 0 picks one)`),
        Options.optional
      ),
      readOnly: Options.boolean("read-only").pipe(Options.withDescription("Show everything, change nothing"))
    },
    (options) =>
      Effect.gen(function*() {
        const fromEnv = yield* IronflowConsole.config.pipe(
          Effect.mapError((error) => shared.usage(`console configuration: ${error.message}`))
        )
        const readOnlyEnv = yield* Config.boolean("IRONFLOW_CONSOLE_READ_ONLY").pipe(
          Config.withDefault(false),
          Effect.orElseSucceed(() => false)
        )
        const exports = yield* shared.loadModule(options.workflows)
        const workflows = exports.filter(Workflow.isWorkflow)
        const views = exports.filter(StateMachineView.isStateMachineView)
        yield* shared.withStore(options, () =>
          withDefinitions(
            workflows,
            Effect.scoped(Effect.gen(function*() {
              const running = yield* IronflowConsole.make({
                ...fromEnv,
                host: Option.getOrElse(options.host, () => fromEnv.host),
                port: Option.getOrElse(options.port, () => fromEnv.port),
                readOnly: options.readOnly || readOnlyEnv,
                views
              }).pipe(
                Effect.mapError((error) => shared.usage(error.message))
              )
              yield* Console.log(
                `ironflow console on ${running.url}${options.readOnly || readOnlyEnv ? " (read-only)" : ""}${
                  workflows.length === 0 ? " (pass --workflows MODULE for typed state and diagrams)" : ""
                }; Ctrl+C stops it`
              )
              return yield* Effect.never
            }))
          ))
      })
  ).pipe(Command.withDescription(
    "Serve the web console (overview, instances, dead letters with retry, /metrics) on 127.0.0.1 until Ctrl+C"
  ))
