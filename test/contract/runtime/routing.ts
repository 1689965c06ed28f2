/** WorkflowRuntime contract: routing outcomes (spec §4.9 step 5, §4.10 step 3). */
import { assert, describe } from "@effect/vitest"
import { Deferred, Effect, Option, TestClock } from "effect"
import {
  CompleteWith,
  ForceReject,
  makeTestHandler,
  makeTestWorkflow,
  makeTimerTestWorkflow,
  Start,
  Stop,
  type TestInput,
  TimerStart
} from "../../support/fixtures.js"
import {
  awaitEventTypes,
  awaitRows,
  awaitSome,
  enqueueRaw,
  eventTypes,
  live,
  rowsOf,
  startRuntime,
  uniqueType
} from "../../support/runtimeHarness.js"
import { allProcessed, routeCompleted, type SuiteIt, testHandler } from "./common.js"

export const routingTests = (it: SuiteIt) => {
  describe("routing outcomes (spec §4.9 step 5, §4.10 step 3)", () => {
    it.scoped("a routed input that is rejected or hits a completed instance still completes the effect", () =>
      Effect.gen(function*() {
        const type = uniqueType("route_outcomes")
        const W = makeTestWorkflow(type)
        const gate = yield* Deferred.make<void>()
        const handler = testHandler(W, (ctx) =>
          ctx.workflow.workflowId === "rejected"
            ? Effect.succeed(Option.some<TestInput>(new ForceReject({ id: "rejected", reason: "not now" })))
            : Deferred.await(gate).pipe(Effect.as(routeCompleted(ctx, "too late"))))
        const rt = yield* startRuntime([handler])
        yield* Effect.addFinalizer(() => Deferred.succeed(gate, undefined))
        yield* rt.service.execute(W, new Start({ id: "rejected", mode: "RouteResult" }))
        yield* rt.service.execute(W, new Start({ id: "stopped", mode: "RouteResult" }))
        // The second instance completes while its effect's handler runs: routing answers AlreadyCompleted.
        yield* rt.service.execute(W, new Stop({ id: "stopped" }))
        yield* Deferred.succeed(gate, undefined)
        const rows = yield* awaitRows("effect", type, "both effects processed", allProcessed(2))
        for (const row of rows) {
          assert.strictEqual(row.attempts, 0)
          assert.isNull(row.lastError)
        }
        assert.deepStrictEqual(yield* eventTypes(type, "rejected"), ["Started"])
        assert.deepStrictEqual(yield* eventTypes(type, "stopped"), ["Started", "Stopped"])
        assert.strictEqual(yield* rt.deadLetters.count({ workflowType: type }), 0)
      }))

    it.scoped("a routed input goes to the instance it names", () =>
      Effect.gen(function*() {
        const type = uniqueType("route_other")
        const W = makeTestWorkflow(type)
        const handler = testHandler(W, () =>
          Effect.succeed(Option.some<TestInput>(new CompleteWith({ id: "other", result: "routed elsewhere" }))))
        const rt = yield* startRuntime([handler])
        yield* rt.service.execute(W, new Start({ id: "origin", mode: "RouteResult" }))
        yield* awaitEventTypes(type, "other", ["Completed"])
        yield* awaitRows("effect", type, "effect processed", allProcessed(1))
        assert.deepStrictEqual(yield* eventTypes(type, "origin"), ["Started"])
      }))

    it.scoped("a timer whose input is rejected, or whose instance is completed, is processed", () =>
      Effect.gen(function*() {
        const type = uniqueType("timer_outcomes")
        const W = makeTestWorkflow(type)
        const rt = yield* startRuntime([makeTestHandler(W)])
        // Scheduled while the instance is active; it completes before the timer fires.
        yield* enqueueRaw(type, "done", { timers: [{ delay: "10 seconds", input: { type: "Ping", id: "done" } }] })
        yield* rt.service.execute(W, new Stop({ id: "done" }))
        yield* enqueueRaw(type, "rejected", {
          timers: [{ delay: 0, input: { type: "ForceReject", id: "rejected", reason: "no" } }]
        })
        yield* TestClock.adjust("10 seconds")
        const rows = yield* awaitRows("timer", type, "both timers processed", allProcessed(2))
        for (const row of rows) {
          assert.strictEqual(row.attempts, 0)
          assert.isNull(row.lastError)
        }
        assert.deepStrictEqual(yield* eventTypes(type, "rejected"), [])
        assert.deepStrictEqual(yield* eventTypes(type, "done"), ["Stopped"])
        assert.strictEqual(yield* rt.deadLetters.countTimers({ workflowType: type }), 0)
      }))

    it.scoped(
      "timers wake at their fire time, not at the next poll (live clock)",
      () =>
        live(Effect.gen(function*() {
          const type = uniqueType("timer_wake")
          const T = makeTimerTestWorkflow(type)
          const rt = yield* startRuntime([T.handler(() => Effect.succeedNone)], { timerPollInterval: "1 minute" })
          // Let the timer worker go to sleep for its (one-minute) poll first.
          yield* Effect.sleep("200 millis")
          yield* rt.service.execute(T, new TimerStart({ id: "wf-1", timeoutSecs: 1, timerKey: "timeout" }))
          // Well before the one-minute poll interval would have allowed.
          yield* awaitEventTypes(type, "wf-1", ["Started", "TimedOut"], { timeout: "20 seconds" })
          // The ack is batched after the timer's input commits.
          const timer = yield* awaitSome(
            "the timer to be acked",
            Effect.map(
              rowsOf("timer", type),
              ([row]) => (row.processedAt === null ? Option.none() : Option.some(row))
            )
          )
          assert.isNotNull(timer.processedAt)
          assert.isAtLeast(timer.processedAt!, timer.fireAt!)
        })),
      { timeout: 30_000 }
    )
  })
}
