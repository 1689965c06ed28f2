/**
 * `ironflow diagram TYPE`: prints the state machine of a `StateMachineView`
 * exported by the application's module, as Mermaid or Graphviz DOT.
 *
 * @internal
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as StateMachineView from "../../StateMachineView.js"
import { CliError, loadExports, workflowsModule } from "./shared.js"

/** @internal */
export const command = Command.make(
  "diagram",
  {
    workflows: workflowsModule,
    dot: Options.boolean("dot").pipe(Options.withDescription("Graphviz DOT instead of Mermaid")),
    type: Args.text({ name: "TYPE" }).pipe(Args.withDescription("Workflow type"))
  },
  (options) =>
    Effect.gen(function*() {
      const exports = yield* loadExports(options.workflows)
      const view = exports.filter(StateMachineView.isStateMachineView).find((v) => v.workflow.type === options.type)
      const definition = view?.stateMachine()
      if (definition === undefined) {
        return yield* new CliError({
          reason:
            `no state machine for workflow type ${options.type}: export a StateMachineView with a stateMachine from the module given by --workflows (or IRONFLOW_WORKFLOWS)`
        })
      }
      yield* Console.log(options.dot ? definition.toDot() : definition.toMermaid())
    })
).pipe(Command.withDescription("Print a workflow's state machine as a Mermaid diagram (or --dot)"))
