import { assert, layer } from "@effect/vitest"
import { Effect, Option } from "effect"
import { TestRuntime, WorkflowService } from "ironflow"
import { StartTrial, Subscribe, TrialWorkflow } from "../../scratchpad/examples/TrialWorkflow.js"

// The card is always declined by the payment provider.
const charges = TestRuntime.handlerDouble(TrialWorkflow, [TestRuntime.Reply.fail("card declined")])

layer(TestRuntime.layer({ handlers: [charges.handler] }), { timeout: 60_000 })("TrialWorkflow retries", (it) => {
  it.effect("a charge that keeps failing is retried, then dead-lettered", () =>
    Effect.gen(function*() {
      const service = yield* WorkflowService.WorkflowService
      yield* service.execute(TrialWorkflow, new StartTrial({ customerId: "c-2" }))
      yield* service.execute(TrialWorkflow, new Subscribe({ customerId: "c-2", plan: "pro" }))

      // The test config retries 3 times in all (50 ms, then 100 ms apart): advance the TestClock while waiting.
      const [letter] = yield* TestRuntime.awaitDeadLetters(
        { workflowType: "trial", workflowId: "c-2" },
        { advanceClock: "100 millis" }
      )
      assert.strictEqual(letter.attempts, 3)
      assert.include(Option.getOrElse(letter.lastError, () => ""), "card declined")
      const calls = yield* charges.calls
      assert.deepStrictEqual(calls.map((call) => call.context.attempt), [1, 2, 3])
      const state = yield* service.fetchLatestState(TrialWorkflow, "c-2")
      assert.strictEqual(state.status, "subscribing")
    }))
})
