/** WorkflowRuntime contract: ironflow's runtime tests (spec §7.3) on failures, leases and shutdown. */
import { assert, describe } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Option, Ref, TestClock } from "effect"
import { DeadLetterQuery, WorkflowStore } from "ironflow"
import { randomUUID } from "node:crypto"
import {
  makeTestHandler,
  makeTestWorkflow,
  makeTimerTestWorkflow,
  Ping,
  Start,
  TimerStart
} from "../../support/fixtures.js"
import {
  appendRawEvents,
  awaitCondition,
  awaitEventTypes,
  awaitRows,
  enqueueRaw,
  eventTypes,
  liveSleep,
  rowsOf,
  serviceFor,
  startRuntime,
  storedEvents,
  TEST_MAX_ATTEMPTS,
  uniqueType
} from "../../support/runtimeHarness.js"
import {
  allProcessed,
  deleteEvent,
  makeInvocationLog,
  routeCompleted,
  shutdownWithin,
  type SuiteIt,
  testHandler
} from "./common.js"

export const ironflowFailuresTests = (it: SuiteIt) => {
  describe("ironflow runtime tests (spec §7.3): failures, leases, shutdown", () => {
    it.scoped("effect_transient_failure_retries_then_succeeds", () =>
      Effect.gen(function*() {
        const type = uniqueType("transient")
        const W = makeTestWorkflow(type)
        const rt = yield* startRuntime([makeTestHandler(W)])
        yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "TransientFailure" }))
        yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"], { advance: "50 millis" })
        const events = yield* storedEvents(type, "wf-1")
        assert.deepStrictEqual(events[1].payload, { type: "Completed", result: "success on attempt 2" })
        const rows = yield* awaitRows("effect", type, "effect processed", allProcessed(1))
        assert.strictEqual(rows[0].attempts, 1)
        assert.include(rows[0].lastError ?? "", "transient failure on attempt 1")
        assert.isNull(rows[0].deadLetteredAt)
        assert.strictEqual(yield* rt.deadLetters.count({ workflowType: type }), 0)
      }))

    it.scoped("effect_permanent_failure_goes_to_dead_letter", () =>
      Effect.gen(function*() {
        const type = uniqueType("permanent")
        const W = makeTestWorkflow(type)
        const rt = yield* startRuntime([makeTestHandler(W)])
        yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "PermanentFailure" }))
        yield* awaitCondition(
          "a dead letter",
          Effect.map(rt.deadLetters.count({ workflowType: type }), (n) => n === 1),
          { advance: "50 millis" }
        )
        const [dead] = yield* rt.deadLetters.fetch({ workflowType: type })
        assert.strictEqual(dead.kind, "effect")
        assert.strictEqual(dead.workflowType, type)
        assert.strictEqual(dead.workflowId, "wf-1")
        assert.deepStrictEqual(dead.payload, { type: "Process", mode: "PermanentFailure" })
        assert.strictEqual(dead.attempts, TEST_MAX_ATTEMPTS)
        assert.include(Option.getOrElse(dead.lastError, () => ""), "permanent failure")
        // Nothing runs it again, and the workflow keeps only Started.
        yield* TestClock.adjust("1 minute")
        yield* liveSleep("200 millis")
        const [row] = yield* rowsOf("effect", type)
        assert.strictEqual(row.attempts, TEST_MAX_ATTEMPTS)
        assert.isNull(row.processedAt)
        assert.isNotNull(row.deadLetteredAt)
        assert.isNull(row.lockedBy)
        assert.deepStrictEqual(yield* eventTypes(type, "wf-1"), ["Started"])
      }))

    it.scoped("effect_routing_failure_retries_effect", () =>
      Effect.gen(function*() {
        const type = uniqueType("routing_failure")
        const W = makeTestWorkflow(type)
        const handler = makeTestHandler(W)
        // The effect exists before the history is corrupted: routing its result replays a bad event.
        const service = yield* serviceFor([handler])
        yield* service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
        yield* appendRawEvents(type, "wf-1", [{ type: "NoSuchEvent" }])
        const rt = yield* startRuntime([handler])
        yield* awaitCondition(
          "a dead letter",
          Effect.map(rt.deadLetters.count({ workflowType: type }), (n) => n === 1),
          { advance: "50 millis" }
        )
        const [dead] = yield* rt.deadLetters.fetch({ workflowType: type })
        assert.strictEqual(dead.attempts, TEST_MAX_ATTEMPTS)
        const lastError = Option.getOrElse(dead.lastError, () => "")
        assert.isTrue(lastError.startsWith("Failed to route result:"), lastError)
        assert.include(lastError, "deserialize")
        assert.deepStrictEqual(yield* eventTypes(type, "wf-1"), ["Started", "NoSuchEvent"])
      }))

    it.scoped("timer_execution_failure_retries_and_dead_letters", () =>
      Effect.gen(function*() {
        const type = uniqueType("timer_failure")
        const W = makeTestWorkflow(type)
        const handler = makeTestHandler(W)
        const service = yield* serviceFor([handler])
        yield* service.execute(W, new Ping({ id: "wf-1" }))
        yield* appendRawEvents(type, "wf-1", [{ type: "NoSuchEvent" }])
        yield* enqueueRaw(type, "wf-1", { timers: [{ delay: 0, input: { type: "Ping", id: "wf-1" } }] })
        const rt = yield* startRuntime([handler])
        yield* awaitCondition(
          "a timer dead letter",
          Effect.map(rt.deadLetters.countTimers({ workflowType: type }), (n) => n === 1),
          { advance: "50 millis" }
        )
        const [dead] = yield* rt.runtime.fetchTimerDeadLetters({ workflowType: type })
        assert.strictEqual(dead.kind, "timer")
        assert.strictEqual(dead.workflowId, "wf-1")
        assert.deepStrictEqual(dead.payload, { type: "Ping", id: "wf-1" })
        assert.strictEqual(dead.attempts, TEST_MAX_ATTEMPTS)
        const lastError = Option.getOrElse(dead.lastError, () => "")
        assert.isTrue(lastError.startsWith("Failed to execute timer input:"), lastError)
        assert.include(lastError, "deserialize")
        assert.strictEqual(yield* rt.runtime.countTimerDeadLetters({ workflowType: type }), 1)
        assert.strictEqual(yield* rt.deadLetters.count({ workflowType: type }), 0)

        // Repair the history, retry the timer: it fires again and its input is accepted.
        yield* deleteEvent(type, "wf-1", 2)
        assert.isTrue(yield* rt.runtime.retryTimerDeadLetter(dead.id))
        yield* awaitEventTypes(type, "wf-1", ["Pinged", "Pinged"])
        const [row] = yield* awaitRows("timer", type, "timer processed", allProcessed(1))
        assert.isNull(row.deadLetteredAt)
        assert.strictEqual(yield* rt.deadLetters.countTimers({ workflowType: type }), 0)
        assert.isFalse(yield* rt.deadLetters.retryTimer(dead.id))
      }))

    it.scoped("timer_with_corrupted_input_dead_letters", () =>
      Effect.gen(function*() {
        const type = uniqueType("timer_corrupt")
        const W = makeTestWorkflow(type)
        yield* enqueueRaw(type, "wf-1", { timers: [{ delay: 0, input: { type: "NoSuchInput", id: "wf-1" } }] })
        const rt = yield* startRuntime([makeTestHandler(W)])
        yield* awaitCondition(
          "a timer dead letter",
          Effect.map(rt.deadLetters.countTimers({ workflowType: type }), (n) => n === 1),
          { advance: "50 millis" }
        )
        const [dead] = yield* rt.deadLetters.fetchTimers({ workflowType: type })
        assert.strictEqual(dead.attempts, TEST_MAX_ATTEMPTS)
        const lastError = Option.getOrElse(dead.lastError, () => "")
        assert.isTrue(lastError.startsWith("Failed to execute timer input:"), lastError)
        assert.include(lastError, "decode input")
        assert.deepStrictEqual(yield* eventTypes(type, "wf-1"), [])
      }))

    it.scoped("timer_key_scoped_to_workflow_instance", () =>
      Effect.gen(function*() {
        const type = uniqueType("timer_key_scope")
        const T = makeTimerTestWorkflow(type)
        // A handler that routes nothing, so no timer gets cancelled.
        const rt = yield* startRuntime([T.handler(() => Effect.succeedNone)])
        for (const id of ["wf-1", "wf-2"]) {
          yield* rt.service.execute(T, new TimerStart({ id, timeoutSecs: 60, timerKey: "shared" }))
        }
        // Scheduling the key again on wf-1 replaces its timer; wf-2's stays.
        yield* rt.service.execute(T, new TimerStart({ id: "wf-1", timeoutSecs: 120, timerKey: "shared" }))
        yield* awaitRows("effect", type, "effects processed", allProcessed(3))
        const pending = (yield* rowsOf("timer", type)).filter((row) => row.processedAt === null)
        assert.deepStrictEqual(pending.map((row) => [row.workflowId, row.key]).sort(), [
          ["wf-1", "shared"],
          ["wf-2", "shared"]
        ])
        const wf1 = pending.find((row) => row.workflowId === "wf-1")!
        const wf2 = pending.find((row) => row.workflowId === "wf-2")!
        assert.strictEqual(wf1.fireAt! - wf1.createdAt, 120_000)
        assert.strictEqual(wf2.fireAt! - wf2.createdAt, 60_000)
      }))

    it.scoped("lock_expiration_allows_retry_by_another_worker", () =>
      Effect.gen(function*() {
        const type = uniqueType("lock_expiration")
        const W = makeTestWorkflow(type)
        const log = yield* makeInvocationLog
        const handler = testHandler(W, (ctx) => log.record(ctx).pipe(Effect.as(routeCompleted(ctx, "success"))))
        const service = yield* serviceFor([handler])
        yield* service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
        const store = yield* WorkflowStore.WorkflowStore
        const claimed = yield* store.claim({
          kind: "effect",
          workerId: "crashed-worker",
          workflowTypes: [type],
          limit: 1,
          lease: Duration.seconds(30)
        })
        assert.strictEqual(claimed.length, 1)
        yield* startRuntime([handler], { workerId: `${type}-rt` })
        // While the crashed worker's lease holds, nobody else runs the effect.
        for (let i = 0; i < 5; i++) {
          yield* TestClock.adjust("5 seconds")
          yield* liveSleep("20 millis")
        }
        const [held] = yield* rowsOf("effect", type)
        assert.strictEqual(held.lockedBy, "crashed-worker")
        assert.isNull(held.processedAt)
        assert.strictEqual((yield* log.entries).length, 0)
        // The lease expires: another worker claims and processes it; no attempt was counted for the crash.
        yield* TestClock.adjust("6 seconds")
        yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"], { advance: "50 millis" })
        const [row] = yield* awaitRows("effect", type, "effect processed", allProcessed(1))
        assert.strictEqual(row.attempts, 0)
        assert.deepStrictEqual((yield* log.entries).map((e) => e.attempt), [1])
      }))

    it.scoped("dead_letter_query_filters_by_both_type_and_id", () =>
      Effect.gen(function*() {
        const typeA = uniqueType("dlq_a")
        const typeB = uniqueType("dlq_b")
        const A = makeTestWorkflow(typeA)
        const B = makeTestWorkflow(typeB)
        const prefix = randomUUID()
        const idsA = [1, 2, 3].map((n) => `${prefix}-a${n}`)
        const idB = `${prefix}-b1`
        const rt = yield* startRuntime([makeTestHandler(A), makeTestHandler(B)])
        // Created one second apart: dead letters come back newest first.
        for (const id of idsA) {
          yield* rt.service.execute(A, new Start({ id, mode: "PermanentFailure" }))
          yield* TestClock.adjust("1 second")
        }
        yield* rt.service.execute(B, new Start({ id: idB, mode: "PermanentFailure" }))
        yield* awaitCondition(
          "four dead letters",
          Effect.zipWith(
            rt.deadLetters.count({ workflowType: typeA }),
            rt.deadLetters.count({ workflowType: typeB }),
            (a, b) => a === 3 && b === 1
          ),
          { advance: "50 millis" }
        )
        const byTypeAndId = DeadLetterQuery.make().pipe(
          DeadLetterQuery.workflowType(typeA),
          DeadLetterQuery.workflowId(idsA[0])
        )
        const both = yield* rt.runtime.fetchDeadLetters(byTypeAndId)
        assert.strictEqual(both.length, 1)
        assert.strictEqual(both[0].workflowId, idsA[0])
        assert.strictEqual(both[0].workflowType, typeA)
        assert.strictEqual(yield* rt.runtime.countDeadLetters(byTypeAndId), 1)

        const byType = yield* rt.runtime.fetchDeadLetters(
          DeadLetterQuery.make().pipe(DeadLetterQuery.workflowType(typeA))
        )
        assert.deepStrictEqual(byType.map((d) => d.workflowId), [...idsA].reverse())
        assert.strictEqual(yield* rt.runtime.countDeadLetters({ workflowType: typeA }), 3)

        const byId = yield* rt.runtime.fetchDeadLetters(
          DeadLetterQuery.make().pipe(DeadLetterQuery.workflowId(idsA[0]))
        )
        assert.strictEqual(byId.length, 1)
        assert.strictEqual(byId[0].workflowType, typeA)
        assert.strictEqual(yield* rt.runtime.countDeadLetters({ workflowId: idsA[0] }), 1)

        assert.strictEqual(yield* rt.runtime.countDeadLetters({ workflowType: typeB, workflowId: idsA[0] }), 0)
        assert.strictEqual(yield* rt.runtime.countDeadLetters({ workflowType: typeB, workflowId: idB }), 1)
        // A limit caps the fetch, not the count.
        const limited = yield* rt.runtime.fetchDeadLetters(
          DeadLetterQuery.make().pipe(DeadLetterQuery.workflowType(typeA), DeadLetterQuery.limit(2))
        )
        assert.deepStrictEqual(limited.map((d) => d.workflowId), [idsA[2], idsA[1]])
        const page = yield* rt.runtime.fetchDeadLetters(
          DeadLetterQuery.make().pipe(
            DeadLetterQuery.workflowType(typeA),
            DeadLetterQuery.limit(2),
            DeadLetterQuery.offset(2)
          )
        )
        assert.deepStrictEqual(page.map((d) => d.workflowId), [idsA[0]])
        assert.strictEqual(
          yield* rt.runtime.countDeadLetters(
            DeadLetterQuery.make().pipe(DeadLetterQuery.workflowType(typeA), DeadLetterQuery.limit(2))
          ),
          3
        )
      }))

    it.scoped("effect_with_corrupted_payload_dead_letters", () =>
      Effect.gen(function*() {
        const type = uniqueType("corrupt_payload")
        const W = makeTestWorkflow(type)
        yield* enqueueRaw(type, "wf-1", { effects: [{ type: "NoSuchEffect", mode: "RouteResult" }] })
        const rt = yield* startRuntime([makeTestHandler(W)])
        yield* awaitCondition(
          "a dead letter",
          Effect.map(rt.deadLetters.count({ workflowType: type }), (n) => n === 1),
          { advance: "50 millis" }
        )
        const [dead] = yield* rt.deadLetters.fetch({ workflowType: type })
        assert.strictEqual(dead.attempts, TEST_MAX_ATTEMPTS)
        assert.deepStrictEqual(dead.payload, { type: "NoSuchEffect", mode: "RouteResult" })
        assert.include(Option.getOrElse(dead.lastError, () => ""), "decode effect")
      }))

    it.scoped("graceful_shutdown_completes_current_effect", () =>
      Effect.gen(function*() {
        const type = uniqueType("graceful_shutdown")
        const W = makeTestWorkflow(type)
        const started = yield* Deferred.make<void>()
        const finished = yield* Ref.make(false)
        const handler = testHandler(W, (ctx) =>
          Effect.gen(function*() {
            yield* Deferred.succeed(started, undefined)
            yield* liveSleep("200 millis")
            yield* Ref.set(finished, true)
            return routeCompleted(ctx, "success")
          }))
        const rt = yield* startRuntime([handler])
        yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
        yield* Deferred.await(started)
        const { exit } = yield* shutdownWithin(rt, "5 seconds")
        assert.isTrue(Exit.isSuccess(exit))
        assert.isTrue(yield* Ref.get(finished))
        assert.deepStrictEqual(yield* eventTypes(type, "wf-1"), ["Started", "Completed"])
        const [row] = yield* rowsOf("effect", type)
        assert.isNotNull(row.processedAt)
        assert.strictEqual(row.attempts, 0)
      }))

    it.scoped("multiple_workers_no_double_processing", () =>
      Effect.gen(function*() {
        const type = uniqueType("no_double")
        const W = makeTestWorkflow(type)
        const log = yield* makeInvocationLog
        const handler = testHandler(W, (ctx) =>
          log.record(ctx).pipe(Effect.zipRight(liveSleep("50 millis")), Effect.as(routeCompleted(ctx, "success"))))
        const rt = yield* startRuntime([handler], { effectWorkers: 4, claimBatchSize: 1, handlerConcurrency: 1 })
        const ids = [1, 2, 3, 4, 5].map((n) =>
          `wf-${n}`
        )
        yield* Effect.forEach(ids, (id) => rt.service.execute(W, new Start({ id, mode: "RouteResult" })), {
          concurrency: "unbounded"
        })
        const rows = yield* awaitRows("effect", type, "all effects processed", allProcessed(5), {
          advance: "50 millis"
        })
        // Give the workers more polls: nothing runs again.
        for (let i = 0; i < 5; i++) {
          yield* TestClock.adjust("50 millis")
          yield* liveSleep("20 millis")
        }
        const counts = yield* log.countsById
        assert.strictEqual(counts.size, 5)
        for (const row of rows) assert.strictEqual(counts.get(row.id), 1, row.id)
        for (const id of ids) yield* awaitEventTypes(type, id, ["Started", "Completed"])
      }))

    it.scoped("shutdown_completes_when_worker_panics (a dying handler is a failed attempt)", () =>
      Effect.gen(function*() {
        const type = uniqueType("handler_dies")
        const W = makeTestWorkflow(type)
        const handler = testHandler(W, (ctx) =>
          ctx.workflow.workflowId === "boom"
            ? Effect.die(new Error("handler exploded"))
            : Effect.succeed(routeCompleted(ctx, "success")))
        const rt = yield* startRuntime([handler], { effectWorkers: 1, handlerConcurrency: 1 })
        yield* rt.service.execute(W, new Start({ id: "boom", mode: "RouteResult" }))
        const [failed] = yield* awaitRows(
          "effect",
          type,
          "first failed attempt",
          (rows) => rows.length === 1 && rows[0].attempts === 1
        )
        assert.isNull(failed.lockedBy)
        assert.isNull(failed.processedAt)
        assert.isNull(failed.deadLetteredAt)
        assert.include(failed.lastError ?? "", "Error: handler exploded")
        // The same single worker still processes other effects.
        yield* rt.service.execute(W, new Start({ id: "ok", mode: "RouteResult" }))
        yield* awaitEventTypes(type, "ok", ["Started", "Completed"])
        const { exit } = yield* shutdownWithin(rt, "5 seconds")
        assert.isTrue(Exit.isSuccess(exit))
      }))
  })
}
