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
import type * as Redacted from "effect/Redacted"
import type * as Workflow from "../../Workflow.js"
import { WorkflowRegistry } from "../../WorkflowRegistry.js"
import * as WorkflowRegistryModule from "../../WorkflowRegistry.js"
import * as WorkflowService from "../../WorkflowService.js"
import type * as WorkflowStore from "../../WorkflowStore.js"
import { codecsOf } from "../codecs.js"

interface Connection {
  readonly databaseUrl: Option.Option<Redacted.Redacted>
  readonly dataDir: Option.Option<string>
}

/** What the command borrows from `Cli.ts`: options, the store, the module loader and its two error kinds. */
export interface Shared<EStore, ELoad> {
  readonly connection: {
    readonly databaseUrl: Options.Options<Option.Option<Redacted.Redacted>>
    readonly dataDir: Options.Options<Option.Option<string>>
  }
  readonly json: Options.Options<boolean>
  readonly workflows: Options.Options<Option.Option<string>>
  readonly withStore: <A, E>(
    options: Connection,
    f: (store: WorkflowStore.WorkflowStore["Type"]) => Effect.Effect<A, E, WorkflowStore.WorkflowStore>
  ) => Effect.Effect<A, E | EStore>
  readonly loadWorkflows: (module: Option.Option<string>) => Effect.Effect<ReadonlyArray<Workflow.Any>, ELoad>
  /** A refused operation: exit code 1. */
  readonly refused: (reason: string) => Error
  /** A bad argument: exit code 2. */
  readonly usage: (reason: string) => Error
}

/** @internal */
export const make = <EStore, ELoad>(shared: Shared<EStore, ELoad>) =>
  Command.make(
    "cancel",
    {
      ...shared.connection,
      json: shared.json,
      workflows: shared.workflows,
      reason: Options.text("reason").pipe(Options.withDescription("Why the instance is cancelled (given to `cancel`)")),
      type: Args.text({ name: "TYPE" }).pipe(Args.withDescription("Workflow type")),
      id: Args.text({ name: "ID" }).pipe(Args.withDescription("Workflow id"))
    },
    (options) =>
      Effect.gen(function*() {
        const workflows = yield* shared.loadWorkflows(options.workflows)
        if (workflows.length === 0) {
          return yield* Effect.fail(shared.usage(
            "instances cancel needs the workflow definitions: pass --workflows MODULE (or set IRONFLOW_WORKFLOWS) exporting them"
          ))
        }
        const definition = workflows.find((w) => w.type === options.type)
        if (definition === undefined) {
          return yield* Effect.fail(shared.usage(
            `no workflow type ${options.type} among the loaded definitions (they define: ${
              workflows.map((w) => w.type).join(", ")
            })`
          ))
        }
        const name = `${options.type}:${options.id}`
        yield* shared.withStore(options, (store) =>
          Effect.gen(function*() {
            // Refused before anything runs: a mistyped id would otherwise start an instance.
            if (Option.isNone(yield* store.fetchInstance(options.type, options.id))) {
              return yield* Effect.fail(shared.refused(`no instance ${name}`))
            }
            // Only the service is needed (no handler runs here), as for `show`.
            const registry = yield* WorkflowRegistryModule.make([definition as Workflow.WithoutEffects])
            const service = yield* WorkflowService.make.pipe(Effect.provideService(WorkflowRegistry, registry))
            const outcome = yield* service.cancel(definition, options.id, options.reason)
            switch (outcome._tag) {
              case "Accepted":
                return yield* options.json
                  ? Console.log(JSON.stringify({ outcome: "Accepted", eventsAppended: outcome.eventsAppended }))
                  : Console.log(`cancelled ${name}: ${outcome.eventsAppended} event(s) appended`)
              case "AlreadyCompleted":
                return yield* Effect.fail(shared.refused(`${name} is already completed: nothing to cancel`))
              case "Rejected": {
                const rejection = yield* codecsOf(definition).rejection.encode(outcome.reason).pipe(
                  Effect.orElseSucceed(() => String(outcome.reason))
                )
                return yield* Effect.fail(
                  shared.refused(`${name} rejected the cancellation: ${JSON.stringify(rejection)}`)
                )
              }
            }
          }))
      })
  ).pipe(Command.withDescription(
    "Cancel an instance: executes its workflow's cancellation input (needs --workflows MODULE); decide chooses what cancelling means"
  ))
