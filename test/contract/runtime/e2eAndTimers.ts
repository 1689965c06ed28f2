/** WorkflowRuntime contract: ironflow's e2e tests (spec §7.4) and timers under the TestClock. */
import { assert, describe } from "@effect/vitest"
import { Effect, Equal, Option, TestClock } from "effect"
import { WorkflowStore } from "ironflow"
import { makeTimerTestHandler, makeTimerTestWorkflow, TimerStart } from "../../support/fixtures.js"
import {
  awaitEventTypes,
  awaitRows,
  eventTypes,
  liveSleep,
  rowsOf,
  startRuntime,
  storedEvents,
  uniqueType
} from "../../support/runtimeHarness.js"
import { allProcessed, type SuiteIt } from "./common.js"

export const e2eAndTimersTests = (it: SuiteIt) => {
  // -----------------------------------------------------------------------
  // §7.4 tests/postgres/e2e.rs
  // -----------------------------------------------------------------------
  describe("ironflow e2e tests (spec §7.4)", () => {
    it.scoped("timer_scheduling_and_cancellation", () =>
      Effect.gen(function*() {
        const type = uniqueType("e2e_timer")
        const T = makeTimerTestWorkflow(type)
        const rt = yield* startRuntime([makeTimerTestHandler(T)])
        yield* rt.service.execute(T, new TimerStart({ id: "wf-1", timeoutSecs: 60, timerKey: "timeout" }))
        yield* awaitEventTypes(type, "wf-1", ["Started", "Completed", "TimerCancelled"])
        const events = yield* storedEvents(type, "wf-1")
        assert.deepStrictEqual(events[2].payload, { type: "TimerCancelled", key: "timeout" })
        const pending = yield* Effect.flatMap(WorkflowStore.WorkflowStore, (s) => s.fetchPending(type, "wf-1"))
        assert.strictEqual(
          pending.filter((p) => p.kind === "timer" && Equal.equals(p.key, Option.some("timeout"))).length,
          0
        )
        const timers = yield* rowsOf("timer", type)
        assert.strictEqual(timers.length, 1)
        assert.isNotNull(timers[0].processedAt)
        // The cancelled timer never fires.
        yield* TestClock.adjust("61 seconds")
        yield* liveSleep("200 millis")
        assert.deepStrictEqual(yield* eventTypes(type, "wf-1"), ["Started", "Completed", "TimerCancelled"])
        const state = yield* rt.service.fetchLatestState(T, "wf-1")
        assert.deepStrictEqual(state, { started: true, completed: true, timedOut: false })
      }))
  })

  // -----------------------------------------------------------------------
  // The runtime's own behaviour (DESIGN.md §3–5)
  // -----------------------------------------------------------------------
  describe("timers under the TestClock", () => {
    it.scoped("a one-hour timer fires only once the clock has moved one hour", () =>
      Effect.gen(function*() {
        const type = uniqueType("one_hour")
        const T = makeTimerTestWorkflow(type)
        const rt = yield* startRuntime([T.handler(() => Effect.succeedNone)])
        yield* rt.service.execute(T, new TimerStart({ id: "wf-1", timeoutSecs: 3600, timerKey: "timeout" }))
        yield* awaitRows("effect", type, "effect processed", allProcessed(1))
        const [scheduled] = yield* rowsOf("timer", type)
        assert.strictEqual(scheduled.fireAt! - scheduled.createdAt, 3_600_000)

        yield* TestClock.adjust("59 minutes")
        yield* liveSleep("300 millis")
        yield* TestClock.adjust("59 seconds")
        yield* liveSleep("300 millis")
        assert.deepStrictEqual(yield* eventTypes(type, "wf-1"), ["Started"])
        const [waiting] = yield* rowsOf("timer", type)
        assert.isNull(waiting.processedAt)
        assert.strictEqual(waiting.attempts, 0)
        assert.isNull(waiting.lockedBy)

        yield* TestClock.adjust("1 second")
        yield* awaitEventTypes(type, "wf-1", ["Started", "TimedOut"])
        const [fired] = yield* awaitRows("timer", type, "timer processed", allProcessed(1))
        assert.strictEqual(fired.processedAt, scheduled.fireAt)
        const state = yield* rt.service.fetchLatestState(T, "wf-1")
        assert.isTrue(state.timedOut)
      }))
  })
}
