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
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as IronflowConsole from "../../Console.js"
import * as StateMachineView from "../../StateMachineView.js"
import * as Workflow from "../../Workflow.js"
import * as WorkflowService from "../../WorkflowService.js"
import { connection, loadExports, serviceFor, UsageError, withStore, workflowsModule } from "./shared.js"

/** With definitions, the pages show typed state through the application's service. */
const withDefinitions = <A, E, R>(
  workflows: ReadonlyArray<Workflow.Any>,
  self: Effect.Effect<A, E, R>
) =>
  workflows.length === 0
    ? self as Effect.Effect<A, E, Exclude<R, WorkflowService.WorkflowService>>
    : Effect.flatMap(serviceFor(workflows), (service) =>
      Effect.provideService(self, WorkflowService.WorkflowService, service))

/** @internal */
export const command = Command.make(
  "console",
  {
    ...connection,
    workflows: workflowsModule,
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
        Effect.mapError((error) => new UsageError({ reason: `console configuration: ${error.message}` }))
      )
      // IRONFLOW_CONSOLE_READ_ONLY (in `config`) or the flag: either makes it read-only.
      const readOnly = options.readOnly || fromEnv.readOnly === true
      const exports = yield* loadExports(options.workflows)
      const workflows = exports.filter(Workflow.isWorkflow)
      const views = exports.filter(StateMachineView.isStateMachineView)
      yield* withStore(options, () =>
        withDefinitions(
          workflows,
          Effect.scoped(Effect.gen(function*() {
            const running = yield* IronflowConsole.make({
              ...fromEnv,
              host: Option.getOrElse(options.host, () => fromEnv.host),
              port: Option.getOrElse(options.port, () => fromEnv.port),
              readOnly,
              views
            }).pipe(
              Effect.mapError((error) => new UsageError({ reason: error.message }))
            )
            yield* Console.log(
              `ironflow console on ${running.url}${readOnly ? " (read-only)" : ""}${
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
