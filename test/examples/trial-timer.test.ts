import { assert, layer } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { TestRuntime, WorkflowService } from "ironflow"
import { StartTrial, TrialWorkflow } from "../../scratchpad/examples/TrialWorkflow.js"

const charges = TestRuntime.handlerDouble(TrialWorkflow, [TestRuntime.Reply.none()])

// One named `layer(...)` per backend (not `it.layer` in a loop, which shares the first layer's services).
for (const [name, database] of [["embedded", TestRuntime.embedded()], ["postgres", TestRuntime.postgres()]] as const) {
  layer(TestRuntime.layer({ handlers: [charges.handler], database }), { timeout: 60_000 })(
    `TrialWorkflow on ${name}`,
    (it) => {
      it.effect("a trial expires after 24 hours, not before", () =>
        Effect.gen(function*() {
          yield* TestRuntime.assertDatabase(name) // this run really writes to this database
          const service = yield* WorkflowService.WorkflowService
          yield* service.execute(TrialWorkflow, new StartTrial({ customerId: "c-1" }))

          yield* TestClock.adjust("23 hours")
          const early = yield* TestRuntime.awaitTerminal(TrialWorkflow, "c-1", { timeout: "300 millis" }).pipe(
            Effect.flip
          )
          assert.strictEqual(early._tag, "AwaitTimeout")

          yield* TestClock.adjust("1 hour")
          yield* TestRuntime.awaitTerminal(TrialWorkflow, "c-1")
          const state = yield* service.fetchLatestState(TrialWorkflow, "c-1")
          assert.strictEqual(state.status, "expired")
        }))
    }
  )
}
