/** WorkflowRuntime contract: ironflow's runtime tests (spec §7.3) on processing. */
import { assert, describe } from "@effect/vitest"
import { Effect, Exit, TestClock } from "effect"
import { DeadLetterQuery, ExecuteOutcome } from "ironflow"
import {
  makeTestHandler,
  makeTestWorkflow,
  makeTimerTestHandler,
  makeTimerTestWorkflow,
  Start,
  TimerStart
} from "../../support/fixtures.js"
import {
  awaitEventTypes,
  awaitRows,
  enqueueRaw,
  liveSleep,
  rowsOf,
  serviceFor,
  startRuntime,
  storedEvents,
  uniqueType
} from "../../support/runtimeHarness.js"
import {
  allProcessed,
  makeConcurrencyGauge,
  makeInvocationLog,
  routeCompleted,
  setOutboxAttempts,
  shutdownWithin,
  type SuiteIt,
  testHandler
} from "./common.js"

export const ironflowProcessingTests = (it: SuiteIt) => {
  // -----------------------------------------------------------------------
  // §7.3 tests/postgres/runtime.rs
  // -----------------------------------------------------------------------
  describe("ironflow runtime tests (spec §7.3): processing", () => {
    it.scoped("shutdown_completes_promptly", () =>
      Effect.gen(function*() {
        const type = uniqueType("shutdown_promptly")
        const W = makeTestWorkflow(type)
        const rt = yield* startRuntime([makeTestHandler(W)])
        yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
        yield* rt.service.execute(W, new Start({ id: "wf-2", mode: "FireAndForget" }))
        // Shutdown must not need the shutdown timeout (5 s) when no handler is slow.
        const { exit } = yield* shutdownWithin(rt, "5 seconds")
        assert.isTrue(Exit.isSuccess(exit))
      }))

    it.scoped("full_effect_cycle", () =>
      Effect.gen(function*() {
        const type = uniqueType("full_cycle")
        const W = makeTestWorkflow(type)
        const rt = yield* startRuntime([makeTestHandler(W)])
        const outcome = yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
        assert.deepStrictEqual(outcome, ExecuteOutcome.Accepted({ eventsAppended: 1 }))
        yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"])
        const rows = yield* awaitRows("effect", type, "effect processed", allProcessed(1))
        assert.deepStrictEqual(rows[0].payload, { type: "Process", mode: "RouteResult" })
        assert.strictEqual(rows[0].workflowId, "wf-1")
        assert.strictEqual(rows[0].attempts, 0)
        assert.isNull(rows[0].lockedBy)
        assert.isNull(rows[0].lastError)
        const events = yield* storedEvents(type, "wf-1")
        assert.deepStrictEqual(events.map((e) => e.payload), [
          { type: "Started", mode: "RouteResult" },
          { type: "Completed", result: "success" }
        ])
        const state = yield* rt.service.fetchLatestState(W, "wf-1")
        assert.strictEqual(state.status, "completed")
        assert.strictEqual(state.value, "success")
      }))

    it.scoped("effect_with_previous_failure_gets_processed", () =>
      Effect.gen(function*() {
        const type = uniqueType("previous_failure")
        const W = makeTestWorkflow(type)
        const log = yield* makeInvocationLog
        const handler = testHandler(W, (ctx) => log.record(ctx).pipe(Effect.as(routeCompleted(ctx, "success"))))
        const service = yield* serviceFor([handler])
        yield* service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
        yield* setOutboxAttempts(type, 1, "previous failure")
        yield* startRuntime([handler])
        yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"])
        const rows = yield* awaitRows("effect", type, "effect processed", allProcessed(1))
        assert.strictEqual(rows[0].attempts, 1)
        assert.isNull(rows[0].deadLetteredAt)
        assert.deepStrictEqual((yield* log.entries).map((e) => e.attempt), [2])
      }))

    it.scoped("multiple_workflows_same_type_different_ids", () =>
      Effect.gen(function*() {
        const type = uniqueType("same_type")
        const W = makeTestWorkflow(type)
        const rt = yield* startRuntime([makeTestHandler(W)])
        yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
        yield* rt.service.execute(W, new Start({ id: "wf-2", mode: "RouteResult" }))
        yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"])
        yield* awaitEventTypes(type, "wf-2", ["Started", "Completed"])
        yield* awaitRows("effect", type, "both effects processed", allProcessed(2))
      }))

    it.scoped("multiple_workflow_types_in_same_runtime", () =>
      Effect.gen(function*() {
        const testType = uniqueType("types_test")
        const timerType = uniqueType("types_timer")
        const W = makeTestWorkflow(testType)
        const T = makeTimerTestWorkflow(timerType)
        const rt = yield* startRuntime([makeTestHandler(W), makeTimerTestHandler(T)])
        assert.strictEqual(rt.runtime.workflowCount(), 2)
        yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
        yield* rt.service.execute(T, new TimerStart({ id: "wf-1", timeoutSecs: 60, timerKey: "timeout" }))
        yield* awaitEventTypes(testType, "wf-1", ["Started", "Completed"])
        yield* awaitEventTypes(timerType, "wf-1", ["Started", "Completed", "TimerCancelled"])
        yield* awaitRows("effect", testType, "test effect processed", allProcessed(1))
        yield* awaitRows("effect", timerType, "timer workflow effect processed", allProcessed(1))
      }))

    it.scoped("parallel_effect_processing_with_multiple_workers", () =>
      Effect.gen(function*() {
        const type = uniqueType("parallel_workers")
        const W = makeTestWorkflow(type)
        const gauge = yield* makeConcurrencyGauge
        const handler = testHandler(W, (ctx) =>
          gauge.track(liveSleep("500 millis")).pipe(Effect.as(routeCompleted(ctx, "success"))))
        // One row per claim, one handler per worker: parallelism comes from the 3 workers.
        const rt = yield* startRuntime([handler], { effectWorkers: 3, claimBatchSize: 1, handlerConcurrency: 1 })
        const ids = ["wf-1", "wf-2", "wf-3"]
        yield* Effect.forEach(ids, (id) =>
          rt.service.execute(W, new Start({ id, mode: "RouteResult" })))
        yield* Effect.forEach(ids, (id) => awaitEventTypes(type, id, ["Started", "Completed"]))
        yield* awaitRows("effect", type, "all effects processed", allProcessed(3))
        assert.isAtLeast(yield* gauge.peak, 2)
      }))

    it.scoped("parallel effect processing with handlerConcurrency > 1 in one worker", () =>
      Effect.gen(function*() {
        const type = uniqueType("parallel_handlers")
        const W = makeTestWorkflow(type)
        const gauge = yield* makeConcurrencyGauge
        const handler = testHandler(W, (ctx) =>
          gauge.track(liveSleep("500 millis")).pipe(Effect.as(routeCompleted(ctx, "success"))))
        const rt = yield* startRuntime([handler], { effectWorkers: 1, handlerConcurrency: 3 })
        const ids = ["wf-1", "wf-2", "wf-3"]
        yield* Effect.forEach(ids, (id) =>
          rt.service.execute(W, new Start({ id, mode: "RouteResult" })))
        yield* Effect.forEach(ids, (id) => awaitEventTypes(type, id, ["Started", "Completed"]))
        yield* awaitRows("effect", type, "all effects processed", allProcessed(3))
        assert.isAtLeast(yield* gauge.peak, 2)
        assert.isAtMost(yield* gauge.peak, 3)
      }))

    it.scoped("unknown_workflow_type_is_not_claimed", () =>
      Effect.gen(function*() {
        const type = uniqueType("known")
        const unknownType = uniqueType("unknown")
        const W = makeTestWorkflow(type)
        yield* enqueueRaw(unknownType, "orphan", {
          effects: [{ type: "Process", mode: "RouteResult" }],
          timers: [{ delay: 0, input: { type: "Ping", id: "orphan" } }]
        })
        const rt = yield* startRuntime([makeTestHandler(W)])
        // The workers run: an effect of the registered type is processed...
        yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
        yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"])
        yield* awaitRows("effect", type, "known effect processed", allProcessed(1))
        // ...and they keep polling for a while (many poll intervals, real time to claim).
        for (let i = 0; i < 10; i++) {
          yield* TestClock.adjust("200 millis")
          yield* liveSleep("20 millis")
        }
        for (const kind of ["effect", "timer"] as const) {
          const rows = yield* rowsOf(kind, unknownType)
          assert.strictEqual(rows.length, 1, kind)
          const row = rows[0]
          assert.isNull(row.processedAt, kind)
          assert.strictEqual(row.attempts, 0, kind)
          assert.isNull(row.lockedBy, kind)
          assert.isNull(row.lockedUntil, kind)
          assert.isNull(row.lastError, kind)
          assert.isNull(row.deadLetteredAt, kind)
        }
        assert.strictEqual(yield* rt.deadLetters.count({ workflowType: unknownType }), 0)
        assert.strictEqual(yield* rt.deadLetters.countTimers({ workflowType: unknownType }), 0)
        assert.strictEqual(
          yield* rt.runtime.countDeadLetters(DeadLetterQuery.make({ workflowType: unknownType })),
          0
        )
      }))

    it.scoped("timer_worker_processes_due_timer_directly", () =>
      Effect.gen(function*() {
        const type = uniqueType("due_timer")
        const W = makeTestWorkflow(type)
        yield* enqueueRaw(type, "wf-1", {
          timers: [{ delay: 0, input: { type: "Start", id: "wf-1", mode: "RouteResult" } }]
        })
        yield* startRuntime([makeTestHandler(W)])
        yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"])
        yield* awaitRows("timer", type, "timer processed", allProcessed(1))
        yield* awaitRows("effect", type, "effect processed", allProcessed(1))
      }))
  })
}
