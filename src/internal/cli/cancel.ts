/**
 * `ironflow instances cancel TYPE ID --reason TEXT`: executes the workflow's
 * cancellation input on one instance (`WorkflowService.cancel`). It needs the
 * application's workflow definitions (`--workflows MODULE`, as `show` does).
 *
 * Exit codes: 2 when the definitions are missing or do not define TYPE (bad
 * arguments), 1 when the cancel is refused (no such instance, no cancellation
 * input, rejected by `decide`, already completed) or fails.
 *
 * @internal
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Workflow from "../../Workflow.js"
import { codecsOf } from "../codecs.js"
import {
  CliError,
  connection,
  json,
  loadExports,
  serviceFor,
  UsageError,
  withStore,
  workflowsModule
} from "./shared.js"

/** @internal */
export const command = Command.make(
  "cancel",
  {
    ...connection,
    json,
    workflows: workflowsModule,
    reason: Options.text("reason").pipe(Options.withDescription("Why the instance is cancelled (given to `cancel`)")),
    type: Args.text({ name: "TYPE" }).pipe(Args.withDescription("Workflow type")),
    id: Args.text({ name: "ID" }).pipe(Args.withDescription("Workflow id"))
  },
  (options) =>
    Effect.gen(function*() {
      const workflows = (yield* loadExports(options.workflows)).filter(Workflow.isWorkflow)
      if (workflows.length === 0) {
        return yield* new UsageError({
          reason:
            "instances cancel needs the workflow definitions: pass --workflows MODULE (or set IRONFLOW_WORKFLOWS) exporting them"
        })
      }
      const definition = workflows.find((w) => w.type === options.type)
      if (definition === undefined) {
        return yield* new UsageError({
          reason: `no workflow type ${options.type} among the loaded definitions (they define: ${
            workflows.map((w) => w.type).join(", ")
          })`
        })
      }
      const name = `${options.type}:${options.id}`
      yield* withStore(options, (store) =>
        Effect.gen(function*() {
          // Refused before anything runs: a mistyped id would otherwise start an instance.
          if (Option.isNone(yield* store.fetchInstance(options.type, options.id))) {
            return yield* new CliError({ reason: `no instance ${name}` })
          }
          // Only the service is needed (no handler runs here), as for `show`.
          const service = yield* serviceFor([definition])
          const outcome = yield* service.cancel(definition, options.id, options.reason)
          switch (outcome._tag) {
            case "Accepted":
              return yield* options.json
                ? Console.log(JSON.stringify({ outcome: "Accepted", eventsAppended: outcome.eventsAppended }))
                : Console.log(`cancelled ${name}: ${outcome.eventsAppended} event(s) appended`)
            case "AlreadyCompleted":
              return yield* new CliError({ reason: `${name} is already completed: nothing to cancel` })
            case "Rejected": {
              const rejection = yield* codecsOf(definition).rejection.encode(outcome.reason).pipe(
                Effect.orElseSucceed(() => String(outcome.reason))
              )
              return yield* new CliError({ reason: `${name} rejected the cancellation: ${JSON.stringify(rejection)}` })
            }
          }
        }))
    })
).pipe(Command.withDescription(
  "Cancel an instance: executes its workflow's cancellation input (needs --workflows MODULE); decide chooses what cancelling means"
))
