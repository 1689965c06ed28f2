/**
 * The `WorkflowRuntime` contract (spec §7.3 `tests/postgres/runtime.rs`, §7.4
 * `tests/postgres/e2e.rs`, the seed API of §3.9–3.10 and the runtime
 * decisions of DESIGN.md §3–5) run against `PgWorkflowStore` over a given
 * database: real PostgreSQL or the embedded PGlite.
 *
 * One database serves the whole suite, so every test defines workflow types of
 * its own (`uniqueType`) and builds its own runtime inside the test; claims
 * filter by registered types, so runtimes of different tests never see each
 * other's rows.
 *
 * Time is the TestClock: it only moves with `TestClock.adjust`, and every
 * timestamp the store writes or compares comes from it. Workers look at the
 * database on real time (woken at once when an execute commits effects or
 * timers, polling otherwise), so effect processing proceeds without moving the
 * clock, while what is due (retry backoff, leases, timers) is decided by
 * `TestClock.adjust` (directly, or `advance` while waiting). Database I/O is
 * real, so waiting for the runtime uses real sleeps. Tests that need real time
 * (lease heartbeat, a handler outliving the shutdown timeout, timer wake-up)
 * run entirely under the live Clock (`live`).
 *
 * Our semantics, where they differ from ironflow 0.6.0 (spec §11):
 * - a dead letter is a row with `dead_lettered_at` set, read with
 *   `DeadLetters` / `runtime.fetchDeadLetters`;
 * - rows of unregistered workflow types stay untouched (0.6.0 behaviour);
 * - a handler that dies is a failed attempt whose `Cause` is `last_error`,
 *   and its worker keeps running (ironflow: the worker panics and stops);
 * - an interrupted handler (shutdown or otherwise) gives its lease back
 *   without counting an attempt;
 * - shutdown releases claimed-but-unstarted rows at once and interrupts
 *   handlers still running after `shutdownTimeout`.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Deferred, Duration, Effect, Equal, Exit, Fiber, Layer, Option, Ref, Scope, TestClock } from "effect"
import {
  DeadLetterQuery,
  DeadLetters,
  EffectContext,
  ExecuteOutcome,
  PgWorkflowStore,
  RetryPolicy,
  RuntimeConfig,
  WorkflowError,
  WorkflowRuntime,
  WorkflowService,
  WorkflowStore
} from "ironflow"
import { randomUUID } from "node:crypto"
import { assertBackend } from "../support/database.js"
import {
  CompleteWith,
  EffectlessIncrement,
  ForceReject,
  HandlerFailure,
  makeEffectlessWorkflow,
  makeTestHandler,
  makeTestWorkflow,
  makeTimerTestHandler,
  makeTimerTestWorkflow,
  Ping,
  Start,
  Stop,
  type TestInput,
  type TestWorkflow,
  TimerStart
} from "../support/fixtures.js"
import {
  appendRawEvents,
  awaitCondition,
  awaitEventTypes,
  awaitRows,
  awaitSome,
  enqueueRaw,
  eventTypes,
  fastConfig,
  live,
  liveSleep,
  type QueueRow,
  rowsOf,
  type RunningRuntime,
  runtimeLayer,
  serviceFor,
  startRuntime,
  storedEvents,
  TEST_MAX_ATTEMPTS,
  uniqueType
} from "../support/runtimeHarness.js"

// =============================================================================
// Helpers
// =============================================================================

const allProcessed = (count: number) => (rows: ReadonlyArray<QueueRow>) =>
  rows.length === count && rows.every((row) => row.processedAt !== null)

const routeCompleted = (ctx: EffectContext.EffectContext, result: string) =>
  Option.some<TestInput>(new CompleteWith({ id: ctx.workflow.workflowId, result }))

/** Shuts a runtime down from another fiber and waits (real time, at most `bound`) for it to finish. */
const shutdownWithin = (runtime: RunningRuntime, bound: Duration.DurationInput) =>
  Effect.gen(function*() {
    const started = Date.now()
    const fiber = yield* Effect.fork(runtime.shutdown)
    const exit = yield* awaitSome(
      `shutdown within ${Duration.format(Duration.decode(bound))}`,
      Effect.sync(() => Option.fromNullable(fiber.unsafePoll())),
      { timeout: bound, interval: "5 millis" }
    )
    return { exit, elapsedMillis: Date.now() - started }
  })

/** Polls a fiber (real time) until it is done and returns its exit. */
const awaitFiber = <A, E>(
  label: string,
  fiber: Fiber.RuntimeFiber<A, E>,
  timeout: Duration.DurationInput = "10 seconds"
) => awaitSome(label, Effect.sync(() => Option.fromNullable(fiber.unsafePoll())), { timeout, interval: "5 millis" })

/** Tracks how many wrapped effects run at once, and the peak. */
const makeConcurrencyGauge = Effect.gen(function*() {
  const current = yield* Ref.make(0)
  const peak = yield* Ref.make(0)
  const track = <A, E, R>(self: Effect.Effect<A, E, R>) =>
    Effect.acquireUseRelease(
      Ref.updateAndGet(current, (n) => n + 1).pipe(Effect.flatMap((n) => Ref.update(peak, (p) => Math.max(p, n)))),
      () => self,
      () => Ref.update(current, (n) => n - 1)
    )
  return { track, peak: Ref.get(peak) }
})

/** Counts handler invocations per effect id. */
const makeInvocationLog = Effect.gen(function*() {
  const log = yield* Ref.make<
    ReadonlyArray<{ readonly effectId: string; readonly attempt: number; readonly by: string }>
  >(
    []
  )
  return {
    record: (ctx: EffectContext.EffectContext, by = "") =>
      Ref.update(log, (entries) => [...entries, { effectId: ctx.effectId, attempt: ctx.attempt, by }]),
    entries: Ref.get(log),
    countsById: Effect.map(Ref.get(log), (entries) => {
      const counts = new Map<string, number>()
      for (const entry of entries) counts.set(entry.effectId, (counts.get(entry.effectId) ?? 0) + 1)
      return counts
    })
  }
})

/** A handler for `TestWorkflow` built from a function of the effect context. */
const testHandler = <R = never>(
  workflow: TestWorkflow,
  handle: (ctx: EffectContext.EffectContext) => Effect.Effect<Option.Option<TestInput>, unknown, R>,
  options?: { readonly retryPolicy?: RetryPolicy.RetryPolicy }
) => workflow.handler((_effect, ctx) => handle(ctx), options)

const setOutboxAttempts = (workflowType: string, attempts: number, lastError: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`UPDATE ironflow.outbox SET attempts = ${attempts}, last_error = ${lastError}
      WHERE workflow_type = ${workflowType}`
  })

const deleteEvent = (workflowType: string, workflowId: string, sequence: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`DELETE FROM ironflow.events
      WHERE workflow_type = ${workflowType} AND workflow_id = ${workflowId} AND sequence = ${sequence}`
  })

// =============================================================================
// Suite
// =============================================================================

export const suite = (label: string, database: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  it.layer(PgWorkflowStore.layer.pipe(Layer.provideMerge(database)), { timeout: "120 seconds" })(
    `WorkflowRuntime (${label})`,
    (it) => {
      it.effect(`runs on ${label}: the database says so, and another connection sees the writes`, () =>
        assertBackend(label))

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

      describe("shutdown", () => {
        it.scoped("an in-flight handler completes during shutdown, which waits for it", () =>
          Effect.gen(function*() {
            const type = uniqueType("in_flight")
            const W = makeTestWorkflow(type)
            const started = yield* Deferred.make<void>()
            const gate = yield* Deferred.make<void>()
            const interrupted = yield* Ref.make(false)
            const handler = testHandler(W, (ctx) =>
              Deferred.succeed(started, undefined).pipe(
                Effect.zipRight(Deferred.await(gate)),
                Effect.as(routeCompleted(ctx, "finished during shutdown")),
                Effect.onInterrupt(() => Ref.set(interrupted, true))
              ))
            const rt = yield* startRuntime([handler])
            yield* Effect.addFinalizer(() => Deferred.succeed(gate, undefined))
            yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
            yield* Deferred.await(started)
            const shutdown = yield* Effect.fork(rt.shutdown)
            yield* liveSleep("200 millis")
            assert.isNull(shutdown.unsafePoll(), "shutdown waits for the handler")
            yield* Deferred.succeed(gate, undefined)
            const exit = yield* awaitFiber("shutdown", shutdown)
            assert.isTrue(Exit.isSuccess(exit))
            assert.isFalse(yield* Ref.get(interrupted))
            assert.deepStrictEqual(yield* eventTypes(type, "wf-1"), ["Started", "Completed"])
            const [row] = yield* rowsOf("effect", type)
            assert.isNotNull(row.processedAt)
            assert.isNull(row.lockedBy)
          }))

        it.scoped("claimed rows not started yet are released as soon as shutdown begins", () =>
          Effect.gen(function*() {
            const type = uniqueType("release_unstarted")
            const W = makeTestWorkflow(type)
            const workerId = `${type}-w`
            const started = yield* Deferred.make<string>()
            const gate = yield* Deferred.make<void>()
            const log = yield* makeInvocationLog
            const handler = testHandler(W, (ctx) =>
              Effect.gen(function*() {
                yield* log.record(ctx)
                yield* Deferred.succeed(started, ctx.effectId)
                yield* Deferred.await(gate)
                return routeCompleted(ctx, "success")
              }))
            // All five rows exist before the runtime starts: one claim takes them all.
            const service = yield* serviceFor([handler])
            for (let i = 1; i <= 5; i++) yield* service.execute(W, new Start({ id: `wf-${i}`, mode: "RouteResult" }))
            const rt = yield* startRuntime([handler], { workerId, handlerConcurrency: 1, claimBatchSize: 5 })
            yield* Effect.addFinalizer(() => Deferred.succeed(gate, undefined))
            const inFlight = yield* Deferred.await(started)
            const claimed = yield* rowsOf("effect", type)
            assert.strictEqual(claimed.length, 5)
            for (const row of claimed) assert.strictEqual(row.lockedBy, `${workerId}-effect`)

            const shutdown = yield* Effect.fork(rt.shutdown)
            // While the first handler still runs, the four others are given back, no attempt counted.
            const rows = yield* awaitRows(
              "effect",
              type,
              "unstarted rows released",
              (rows) => rows.filter((row) => row.id !== inFlight).every((row) => row.lockedBy === null),
              { timeout: "3 seconds" }
            )
            assert.isNull(shutdown.unsafePoll(), "shutdown still waits for the running handler")
            for (const row of rows) {
              if (row.id === inFlight) {
                assert.strictEqual(row.lockedBy, `${workerId}-effect`)
              } else {
                assert.isNull(row.lockedBy)
                assert.isNull(row.lockedUntil)
                assert.strictEqual(row.attempts, 0)
                assert.isNull(row.lastError)
                assert.isNull(row.processedAt)
              }
            }
            yield* Deferred.succeed(gate, undefined)
            assert.isTrue(Exit.isSuccess(yield* awaitFiber("shutdown", shutdown)))
            const after = yield* rowsOf("effect", type)
            for (const row of after) {
              if (row.id === inFlight) {
                assert.isNotNull(row.processedAt)
              } else {
                assert.isNull(row.processedAt)
                assert.strictEqual(row.attempts, 0)
                assert.isNull(row.lockedBy)
              }
            }
            assert.deepStrictEqual((yield* log.entries).map((e) => e.effectId), [inFlight])
          }))

        it.scoped("a handler slower than shutdownTimeout does not block exit (live clock)", () =>
          live(Effect.gen(function*() {
            const type = uniqueType("slow_handler")
            const W = makeTestWorkflow(type)
            const started = yield* Deferred.make<void>()
            const interrupted = yield* Ref.make(false)
            const handler = testHandler(W, (ctx) =>
              Deferred.succeed(started, undefined).pipe(
                Effect.zipRight(Effect.sleep("1 minute")),
                Effect.as(routeCompleted(ctx, "too late")),
                Effect.onInterrupt(() => Ref.set(interrupted, true))
              ))
            const rt = yield* startRuntime([handler], { shutdownTimeout: "200 millis" })
            yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
            yield* Deferred.await(started)
            // Well before the handler's minute is over.
            const { elapsedMillis, exit } = yield* shutdownWithin(rt, "30 seconds")
            assert.isTrue(Exit.isSuccess(exit))
            assert.isBelow(elapsedMillis, 30_000)
            assert.isTrue(yield* Ref.get(interrupted))
            const [row] = yield* rowsOf("effect", type)
            assert.isNull(row.lockedBy)
            assert.isNull(row.lockedUntil)
            assert.strictEqual(row.attempts, 0)
            assert.isNull(row.lastError)
            assert.isNull(row.processedAt)
            assert.isNull(row.deadLetteredAt)
            assert.deepStrictEqual(yield* eventTypes(type, "wf-1"), ["Started"])
          })))
      })

      describe("failures, retries and dead letters", () => {
        it.scoped("a dying handler does not stop its worker", () =>
          Effect.gen(function*() {
            const type = uniqueType("dies_keeps_going")
            const W = makeTestWorkflow(type)
            const handler = testHandler(W, (ctx) =>
              ctx.workflow.workflowId === "boom"
                ? Effect.die(new Error("handler exploded"))
                : Effect.succeed(routeCompleted(ctx, "success")))
            const rt = yield* startRuntime([handler], { effectWorkers: 1, handlerConcurrency: 1, claimBatchSize: 1 })
            yield* rt.service.execute(W, new Start({ id: "boom", mode: "RouteResult" }))
            for (const id of ["after-1", "after-2", "after-3"]) {
              yield* rt.service.execute(W, new Start({ id, mode: "RouteResult" }))
            }
            yield* awaitCondition(
              "the dying effect dead-lettered",
              Effect.map(rt.deadLetters.count({ workflowType: type }), (n) => n === 1),
              { advance: "50 millis" }
            )
            for (const id of ["after-1", "after-2", "after-3"]) {
              yield* awaitEventTypes(type, id, ["Started", "Completed"], { advance: "50 millis" })
            }
            const [dead] = yield* rt.deadLetters.fetch({ workflowType: type })
            assert.strictEqual(dead.workflowId, "boom")
            assert.strictEqual(dead.attempts, TEST_MAX_ATTEMPTS)
            assert.include(Option.getOrElse(dead.lastError, () => ""), "Error: handler exploded")
            // And still later effects are processed.
            yield* rt.service.execute(W, new Start({ id: "later", mode: "RouteResult" }))
            yield* awaitEventTypes(type, "later", ["Started", "Completed"])
          }))

        it.scoped("retries until dead letter, with the Cause in last_error and the policy's backoff", () =>
          Effect.gen(function*() {
            const type = uniqueType("until_dead")
            const W = makeTestWorkflow(type)
            const log = yield* makeInvocationLog
            const handler = testHandler(
              W,
              (ctx) =>
                log.record(ctx).pipe(Effect.zipRight(Effect.fail(new HandlerFailure({ message: "always broken" }))))
            )
            const rt = yield* startRuntime([handler])
            const t0 = yield* Clock.currentTimeMillis
            yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
            // Attempt 1 fails at t0: retry after 50 ms.
            const [first] = yield* awaitRows("effect", type, "attempt 1 recorded", (rows) => rows[0]?.attempts === 1)
            assert.strictEqual(first.lockedUntil, t0 + 50)
            assert.isNull(first.lockedBy)
            assert.isNull(first.deadLetteredAt)
            assert.include(first.lastError ?? "", "HandlerFailure: always broken")
            // Not before the backoff has passed.
            yield* TestClock.adjust("49 millis")
            yield* liveSleep("200 millis")
            assert.strictEqual((yield* log.entries).length, 1)
            // Attempt 2 at t0 + 50 fails: retry after 100 ms.
            yield* TestClock.adjust("1 millis")
            const [second] = yield* awaitRows("effect", type, "attempt 2 recorded", (rows) => rows[0]?.attempts === 2)
            assert.strictEqual(second.lockedUntil, t0 + 50 + 100)
            // Attempt 3 is the last one: dead letter.
            yield* awaitCondition(
              "a dead letter",
              Effect.map(rt.deadLetters.count({ workflowType: type }), (n) => n === 1),
              { advance: "50 millis" }
            )
            const [dead] = yield* rt.deadLetters.fetch({ workflowType: type })
            assert.strictEqual(dead.attempts, TEST_MAX_ATTEMPTS)
            assert.include(Option.getOrElse(dead.lastError, () => ""), "HandlerFailure: always broken")
            const [row] = yield* rowsOf("effect", type)
            assert.isNotNull(row.deadLetteredAt)
            assert.isAtLeast(row.deadLetteredAt!, t0 + 150)
            assert.isNull(row.lockedBy)
            assert.isNull(row.processedAt)
            assert.deepStrictEqual((yield* log.entries).map((e) => e.attempt), [1, 2, 3])
            // A dead letter is not claimed again.
            yield* TestClock.adjust("10 minutes")
            yield* liveSleep("200 millis")
            assert.strictEqual((yield* log.entries).length, 3)
          }))

        it.scoped("an interrupted handler (not by shutdown) counts no attempt", () =>
          Effect.gen(function*() {
            const type = uniqueType("interrupted")
            const W = makeTestWorkflow(type)
            const log = yield* makeInvocationLog
            const handler = testHandler(W, (ctx) =>
              Effect.gen(function*() {
                yield* log.record(ctx)
                if ((yield* log.entries).length === 1) return yield* Effect.interrupt
                return routeCompleted(ctx, "after interruption")
              }))
            const rt = yield* startRuntime([handler])
            yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
            yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"], { advance: "50 millis" })
            const [row] = yield* awaitRows("effect", type, "effect processed", allProcessed(1))
            assert.strictEqual(row.attempts, 0)
            assert.isNull(row.lastError)
            assert.isNull(row.deadLetteredAt)
            assert.deepStrictEqual((yield* log.entries).map((e) => e.attempt), [1, 1])
          }))

        it.scoped("EffectContext: 1-based attempt increasing across retries, stable idempotency key", () =>
          Effect.gen(function*() {
            const type = uniqueType("effect_context")
            const W = makeTestWorkflow(type)
            const seen = yield* Ref.make<
              ReadonlyArray<
                { readonly ctx: EffectContext.EffectContext; readonly current: EffectContext.EffectContext }
              >
            >([])
            const handler = testHandler(W, (ctx) =>
              Effect.gen(function*() {
                const current = yield* EffectContext.CurrentEffectContext
                yield* Ref.update(seen, (all) => [...all, { ctx, current }])
                if (ctx.attempt < 3) return yield* new HandlerFailure({ message: `failing attempt ${ctx.attempt}` })
                return routeCompleted(ctx, `success on attempt ${ctx.attempt}`)
              }))
            const rt = yield* startRuntime([handler])
            yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
            yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"], { advance: "50 millis" })
            const [row] = yield* awaitRows("effect", type, "effect processed", allProcessed(1))
            const calls = yield* Ref.get(seen)
            assert.deepStrictEqual(calls.map((c) => c.ctx.attempt), [1, 2, 3])
            assert.deepStrictEqual(calls.map((c) => c.ctx.isRetry), [false, true, true])
            for (const { ctx, current } of calls) {
              assert.strictEqual(ctx.effectId, row.id)
              assert.strictEqual(ctx.workflow.workflowType, type)
              assert.strictEqual(ctx.workflow.workflowId, "wf-1")
              assert.strictEqual(ctx.idempotencyKey, `${type}:wf-1:${row.id}`)
              assert.strictEqual(ctx.createdAt.epochMillis, row.createdAt)
              assert.isTrue(Equal.equals(current, ctx), "CurrentEffectContext is the handler's context")
            }
            const events = yield* storedEvents(type, "wf-1")
            assert.deepStrictEqual(events[1].payload, { type: "Completed", result: "success on attempt 3" })
          }))

        it.scoped("a per-workflow retry policy (handler option, then config) overrides the runtime default", () =>
          Effect.gen(function*() {
            const [typeA, typeB, typeC, typeD] = ["policy_a", "policy_b", "policy_c", "policy_d"].map(uniqueType)
            const log = yield* makeInvocationLog
            const failing = (type: string, options?: { readonly retryPolicy?: RetryPolicy.RetryPolicy }) =>
              testHandler(
                makeTestWorkflow(type),
                (ctx) =>
                  log.record(ctx, type).pipe(Effect.zipRight(Effect.fail(new HandlerFailure({ message: "no" })))),
                options
              )
            const registrations = [
              // Handler option: a single attempt (runtime default: 3).
              failing(typeA, { retryPolicy: RetryPolicy.make({ maxAttempts: 1 }) }),
              // Handler option: five attempts.
              failing(typeB, { retryPolicy: RetryPolicy.make({ maxAttempts: 5, baseDelay: "10 millis" }) }),
              // Configuration only: two attempts.
              failing(typeC),
              // Both: the handler option wins.
              failing(typeD, { retryPolicy: RetryPolicy.make({ maxAttempts: 1 }) })
            ] as const
            const rt = yield* startRuntime(registrations, {
              workflowRetryPolicies: {
                [typeC]: RetryPolicy.make({ maxAttempts: 2, baseDelay: "10 millis" }),
                [typeD]: RetryPolicy.make({ maxAttempts: 4, baseDelay: "10 millis" })
              }
            })
            for (const type of [typeA, typeB, typeC, typeD]) {
              yield* rt.service.executeDynamic(type, { type: "Start", id: "wf-1", mode: "RouteResult" })
            }
            // The handler option also applies to timers: a bad timer input of type A dies after one attempt.
            yield* enqueueRaw(typeA, "wf-2", { timers: [{ delay: 0, input: { type: "NoSuchInput", id: "wf-2" } }] })
            const expected: ReadonlyArray<readonly [string, number]> = [[typeA, 1], [typeB, 5], [typeC, 2], [typeD, 1]]
            yield* awaitCondition(
              "four dead letters and a dead timer",
              Effect.gen(function*() {
                for (const [type] of expected) {
                  if ((yield* rt.deadLetters.count({ workflowType: type })) !== 1) return false
                }
                return (yield* rt.deadLetters.countTimers({ workflowType: typeA })) === 1
              }),
              { advance: "50 millis" }
            )
            yield* TestClock.adjust("10 minutes")
            yield* liveSleep("100 millis")
            const entries = yield* log.entries
            for (const [type, attempts] of expected) {
              const [dead] = yield* rt.deadLetters.fetch({ workflowType: type })
              assert.strictEqual(dead.attempts, attempts, type)
              assert.strictEqual(entries.filter((e) => e.by === type).length, attempts, type)
            }
            const [deadTimer] = yield* rt.deadLetters.fetchTimers({ workflowType: typeA })
            assert.strictEqual(deadTimer.attempts, 1)
          }))

        it.scoped("DeadLetters.retry runs a dead effect again; false for pending, processed and unknown ids", () =>
          Effect.gen(function*() {
            const type = uniqueType("retry_dead")
            const backoffType = uniqueType("retry_backoff")
            const W = makeTestWorkflow(type)
            const B = makeTestWorkflow(backoffType)
            const fixed = yield* Ref.make(false)
            const log = yield* makeInvocationLog
            const handler = testHandler(W, (ctx) =>
              Effect.gen(function*() {
                yield* log.record(ctx)
                if (!(yield* Ref.get(fixed))) return yield* new HandlerFailure({ message: "not yet" })
                return routeCompleted(ctx, "after retry")
              }))
            // Fails once, then waits an hour before its next attempt: a pending row.
            const backoffHandler = testHandler(
              B,
              () => Effect.fail(new HandlerFailure({ message: "later" })),
              { retryPolicy: RetryPolicy.make({ maxAttempts: 3, baseDelay: "1 hour" }) }
            )
            const rt = yield* startRuntime([handler, backoffHandler])
            const deadLetters = rt.deadLetters
            yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
            yield* rt.service.execute(B, new Start({ id: "wf-1", mode: "RouteResult" }))
            yield* awaitCondition(
              "a dead letter",
              Effect.map(deadLetters.count({ workflowType: type }), (n) => n === 1),
              { advance: "50 millis" }
            )
            const [pendingRow] = yield* awaitRows(
              "effect",
              backoffType,
              "a pending row",
              (rows) => rows[0]?.attempts === 1
            )

            // Pending (backing off): not a dead letter, left as it is.
            assert.isFalse(yield* deadLetters.retry(pendingRow.id))
            assert.deepStrictEqual(yield* rowsOf("effect", backoffType), [pendingRow])
            // Unknown ids.
            assert.isFalse(yield* deadLetters.retry(randomUUID()))
            assert.isFalse(yield* rt.runtime.retryDeadLetter(randomUUID()))
            assert.isFalse(yield* deadLetters.retryTimer(randomUUID()))

            const [dead] = yield* deadLetters.fetch({ workflowType: type })
            yield* Ref.set(fixed, true)
            assert.isTrue(yield* rt.runtime.retryDeadLetter(dead.id))
            yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"])
            const [row] = yield* awaitRows("effect", type, "effect processed", allProcessed(1))
            assert.strictEqual(row.id, dead.id)
            assert.strictEqual(row.attempts, 0)
            assert.isNull(row.lastError)
            assert.isNull(row.deadLetteredAt)
            assert.strictEqual(yield* deadLetters.count({ workflowType: type }), 0)
            // Attempts start over after a retry.
            assert.deepStrictEqual((yield* log.entries).map((e) => e.attempt), [1, 2, 3, 1])
            // Processed: false.
            assert.isFalse(yield* deadLetters.retry(dead.id))
            assert.isFalse(yield* rt.runtime.retryDeadLetter(dead.id))
          }))

        it.scoped("DeadLetters.retry is false for an effect whose handler is running", () =>
          Effect.gen(function*() {
            const type = uniqueType("retry_leased")
            const W = makeTestWorkflow(type)
            const started = yield* Deferred.make<string>()
            const gate = yield* Deferred.make<void>()
            const handler = testHandler(W, (ctx) =>
              Deferred.succeed(started, ctx.effectId).pipe(
                Effect.zipRight(Deferred.await(gate)),
                Effect.as(routeCompleted(ctx, "success"))
              ))
            // Through the Layers: the runtime Layer provides `DeadLetters` and `WorkflowService`.
            yield* Effect.gen(function*() {
              yield* Effect.addFinalizer(() => Deferred.succeed(gate, undefined))
              const service = yield* WorkflowService.WorkflowService
              const deadLetters = yield* DeadLetters.DeadLetters
              yield* service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
              const id = yield* Deferred.await(started)
              const before = yield* rowsOf("effect", type)
              assert.isFalse(yield* deadLetters.retry(id))
              assert.deepStrictEqual(yield* rowsOf("effect", type), before)
              assert.strictEqual(before[0].lockedBy, `${type}-w-effect`)
              yield* Deferred.succeed(gate, undefined)
              yield* awaitRows("effect", type, "effect processed", allProcessed(1))
            }).pipe(Effect.scoped, Effect.provide(runtimeLayer([handler], { workerId: `${type}-w` })))
          }))
      })

      describe("leases", () => {
        for (const kind of ["effect", "timer"] as const) {
          it.scoped(`a stale worker's ${kind} ack changes nothing`, () =>
            Effect.gen(function*() {
              const type = uniqueType(`stale_${kind}`)
              const store = yield* WorkflowStore.WorkflowStore
              yield* enqueueRaw(
                type,
                "wf-1",
                kind === "effect"
                  ? { effects: [{ type: "Process", mode: "FireAndForget" }] }
                  : { timers: [{ delay: 0, input: { type: "Ping", id: "wf-1" } }] }
              )
              const claim = (workerId: string) =>
                store.claim({ kind, workerId, workflowTypes: [type], limit: 10, lease: Duration.seconds(30) })
              const [a] = yield* claim("worker-a")
              assert.strictEqual(a.lockedBy, "worker-a")
              // While A's lease holds, B gets nothing.
              assert.deepStrictEqual(yield* claim("worker-b"), [])
              yield* TestClock.adjust("31 seconds")
              const [b] = yield* claim("worker-b")
              assert.strictEqual(b.id, a.id)
              assert.strictEqual(b.attempts, 0)
              const [held] = yield* rowsOf(kind, type)
              assert.strictEqual(held.lockedBy, "worker-b")

              // Every late call of A is fenced off.
              assert.deepStrictEqual(yield* store.complete(kind, "worker-a", [a.id]), [])
              assert.isFalse(
                yield* store.fail(kind, "worker-a", a.id, "stale failure", {
                  _tag: "RetryAfter",
                  delay: Duration.seconds(1)
                })
              )
              assert.isFalse(yield* store.fail(kind, "worker-a", a.id, "stale failure", { _tag: "DeadLetter" }))
              yield* store.release(kind, "worker-a", [a.id])
              yield* store.extendLeases(kind, "worker-a", [a.id], Duration.hours(1))
              assert.deepStrictEqual(yield* rowsOf(kind, type), [held])

              // B still holds it.
              assert.deepStrictEqual(yield* store.complete(kind, "worker-b", [b.id]), [b.id])
              const [done] = yield* rowsOf(kind, type)
              assert.isNotNull(done.processedAt)
              assert.strictEqual(done.attempts, 0)
            }))
        }

        it.scoped("effects claimed by two runtimes at once never run twice while their leases are held", () =>
          Effect.gen(function*() {
            const type = uniqueType("two_runtimes")
            const W = makeTestWorkflow(type)
            const log = yield* makeInvocationLog
            const handlerOf = (by: string) =>
              testHandler(
                W,
                (ctx) =>
                  log.record(ctx, by).pipe(
                    Effect.zipRight(liveSleep("150 millis")),
                    Effect.as(Option.none<TestInput>())
                  )
              )
            const options = { claimBatchSize: 2, handlerConcurrency: 2 }
            const a = yield* startRuntime([handlerOf("a")], { ...options, workerId: `${type}-a` })
            yield* startRuntime([handlerOf("b")], { ...options, workerId: `${type}-b` })
            const ids = Array.from({ length: 8 }, (_, i) => `wf-${i}`)
            yield* Effect.forEach(ids, (id) => a.service.execute(W, new Start({ id, mode: "FireAndForget" })), {
              concurrency: "unbounded"
            })
            // Polls keep running (the TestClock moves) while handlers hold their 300 s leases.
            const rows = yield* awaitRows("effect", type, "all effects processed", allProcessed(8), {
              advance: "50 millis"
            })
            for (let i = 0; i < 5; i++) {
              yield* TestClock.adjust("50 millis")
              yield* liveSleep("20 millis")
            }
            const counts = yield* log.countsById
            assert.strictEqual(counts.size, 8)
            for (const row of rows) assert.strictEqual(counts.get(row.id), 1, row.id)
          }))

        it.scoped(
          "the lease heartbeat keeps a long handler's effect from a second runtime (live clock)",
          () =>
            live(Effect.gen(function*() {
              const type = uniqueType("heartbeat")
              const W = makeTestWorkflow(type)
              const log = yield* makeInvocationLog
              const started = yield* Deferred.make<void>()
              const handlerOf = (by: string) =>
                testHandler(W, (ctx) =>
                  log.record(ctx, by).pipe(
                    Effect.zipRight(Deferred.succeed(started, undefined)),
                    Effect.zipRight(Effect.sleep("3 seconds")),
                    Effect.as(routeCompleted(ctx, `handled by ${by}`))
                  ))
              const options = { effectLockDuration: "1 second", leaseHeartbeatInterval: "200 millis" } as const
              const a = yield* startRuntime([handlerOf("a")], { ...options, workerId: `${type}-a` })
              yield* startRuntime([handlerOf("b")], { ...options, workerId: `${type}-b` })
              yield* a.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
              yield* Deferred.await(started)
              const startedAt = Date.now()
              yield* Effect.sleep("1500 millis")
              // Past the original one-second lease, the row is still leased, and into the future.
              const [leased] = yield* rowsOf("effect", type)
              assert.isNotNull(leased.lockedBy)
              assert.isNull(leased.processedAt)
              assert.isAbove(leased.lockedUntil!, startedAt + 1000)
              yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"], { timeout: "15 seconds" })
              yield* awaitRows("effect", type, "effect processed", allProcessed(1), { timeout: "5 seconds" })
              yield* Effect.sleep("300 millis")
              assert.strictEqual((yield* log.entries).length, 1)
            })),
          { timeout: 30_000 }
        )
      })

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

      describe("store failures", () => {
        /**
         * The suite's store with failures injected into effect claims and acks (the group transactions that
         * apply handler results with their acks):
         * the first `claims` / `completes` executions fail, and all of them while
         * `down.completes` is set. Decided per execution, so retries see them.
         */
        const flakyStore = (failures: { readonly claims: number; readonly completes: number }) =>
          Effect.gen(function*() {
            const store = yield* WorkflowStore.WorkflowStore
            const counts = { claims: 0, completes: 0 }
            const down = { completes: false }
            const unavailable = (operation: string) =>
              new WorkflowError.StoreError({ operation, cause: new Error("connection refused (injected)") })
            const flaky: WorkflowStore.WorkflowStore["Type"] = {
              ...store,
              claim: (options) =>
                Effect.suspend(() =>
                  options.kind === "effect" && counts.claims++ < failures.claims
                    ? Effect.fail(unavailable("claim effects"))
                    : store.claim(options)
                ),
              // A worker's acks (and the results applied with them) are one fenced group transaction.
              transactGroup: (request, body) =>
                Effect.suspend(() =>
                  request.fence?.kind === "effect" && (counts.completes++ < failures.completes || down.completes)
                    ? Effect.fail(unavailable("apply a group"))
                    : store.transactGroup(request, body)
                )
            }
            return { store: flaky, counts, down }
          })

        it.scoped("failing claims and acks are retried; the worker keeps going", () =>
          Effect.gen(function*() {
            const type = uniqueType("flaky_store")
            const W = makeTestWorkflow(type)
            const log = yield* makeInvocationLog
            const handler = testHandler(W, (ctx) => log.record(ctx).pipe(Effect.as(routeCompleted(ctx, "success"))))
            const flaky = yield* flakyStore({ claims: 3, completes: 2 })
            const rt = yield* startRuntime([handler], {}, flaky.store)
            yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
            yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"], { timeout: "20 seconds" })
            const [row] = yield* awaitRows("effect", type, "effect processed", allProcessed(1), {
              timeout: "20 seconds"
            })
            assert.strictEqual(row.attempts, 0)
            assert.isAbove(flaky.counts.claims, 3)
            assert.isAbove(flaky.counts.completes, 2)
            assert.strictEqual((yield* log.entries).length, 1)
          }), { timeout: 30_000 })

        it.scoped("shutdown completes while the database rejects every ack", () =>
          Effect.gen(function*() {
            const type = uniqueType("ack_down")
            const W = makeTestWorkflow(type)
            const flaky = yield* flakyStore({ claims: 0, completes: 0 })
            flaky.down.completes = true
            const rt = yield* startRuntime([makeTestHandler(W)], { shutdownTimeout: "1 second" }, flaky.store)
            // Whatever happens, the database "comes back" before the runtime is torn down.
            yield* Effect.addFinalizer(() => Effect.sync(() => (flaky.down.completes = false)))
            yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
            yield* awaitCondition("an ack attempted", Effect.sync(() => flaky.counts.completes > 0))
            // Bounded: the shutdown timeout plus the finalizer's own 5 s bound on the last ack, with room to spare.
            const { exit } = yield* shutdownWithin(rt, "20 seconds")
            assert.isTrue(Exit.isSuccess(exit))
            // The ack never landed, and neither did the result applied with it: the row is still pending and
            // will run again (the handler at least once, its result at most once).
            const [row] = yield* rowsOf("effect", type)
            assert.isNull(row.processedAt)
            assert.deepStrictEqual(yield* eventTypes(type, "wf-1"), ["Started"])
          }), { timeout: 40_000 })
      })

      // -----------------------------------------------------------------------
      // Seed API (spec §7.2 tests 1–3, §3.9, §3.10)
      // -----------------------------------------------------------------------
      describe("seed API", () => {
        const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

        it.effect("builder_creates_runtime", () =>
          Effect.gen(function*() {
            const store = yield* WorkflowStore.WorkflowStore
            const W = makeTestWorkflow(uniqueType("builder"))
            const runtime = yield* WorkflowRuntime.builder(store, WorkflowService.makeConfig())
              .register(makeTestHandler(W))
              .buildRuntime()
            assert.strictEqual(runtime.workflowCount(), 1)
            assert.isAbove(runtime.workerId().length, 0)
            assert.match(runtime.workerId(), uuidPattern)
            const config = runtime.config()
            const defaults = RuntimeConfig.make()
            assert.isTrue(Option.isNone(config.workerId))
            assert.isTrue(Equal.equals(config.effectPollInterval, defaults.effectPollInterval))
            assert.isTrue(Equal.equals(config.shutdownTimeout, defaults.shutdownTimeout))
            assert.strictEqual(config.effectWorkers, 1)
            assert.strictEqual(config.timerWorkers, 1)
            // Two builds: two random worker ids.
            const other = yield* WorkflowRuntime.builder(store).register(makeTestHandler(W)).buildRuntime()
            assert.notStrictEqual(other.workerId(), runtime.workerId())
          }))

        it.effect("builder_with_custom_config (worker id and config() returned)", () =>
          Effect.gen(function*() {
            const store = yield* WorkflowStore.WorkflowStore
            const W = makeTestWorkflow(uniqueType("builder_config"))
            const config = RuntimeConfig.make({ ...fastConfig, workerId: "custom-worker-1", effectWorkers: 2 })
            const runtime = yield* WorkflowRuntime.builder(store).register(makeTestHandler(W)).config(config)
              .buildRuntime()
            assert.strictEqual(runtime.workerId(), "custom-worker-1")
            assert.strictEqual(runtime.config(), config)
            assert.strictEqual(runtime.config().effectWorkers, 2)
          }))

        it.effect("builder_rejects_duplicate_registration (buildRuntime, buildService, buildEngine)", () =>
          Effect.gen(function*() {
            const store = yield* WorkflowStore.WorkflowStore
            const type = uniqueType("duplicate")
            const W = makeTestWorkflow(type)
            const other = uniqueType("duplicate_other")
            const builder = WorkflowRuntime.builder(store)
              .register(makeTestHandler(W))
              .register(makeTestHandler(makeTestWorkflow(other)))
              .register(makeTestHandler(W))
            const builds: ReadonlyArray<Effect.Effect<unknown, WorkflowError.DuplicateWorkflowType>> = [
              builder.buildRuntime(),
              builder.buildService(),
              builder.buildEngine()
            ]
            for (const build of builds) {
              const error = yield* Effect.flip(build)
              assert.instanceOf(error, WorkflowError.DuplicateWorkflowType)
              assert.strictEqual(error.workflowType, type)
            }
            const effectless = makeEffectlessWorkflow(uniqueType("duplicate_effectless"))
            const error = yield* Effect.flip(
              WorkflowRuntime.builder(store).registerWithoutEffects(effectless).registerWithoutEffects(effectless)
                .buildEngine()
            )
            assert.strictEqual(error.workflowType, effectless.type)
          }))

        it.scoped("the runtime Layer fails on a duplicate registration", () =>
          Effect.gen(function*() {
            const type = uniqueType("duplicate_layer")
            const W = makeTestWorkflow(type)
            const error = yield* Effect.flip(startRuntime([makeTestHandler(W), makeTestHandler(W)]))
            assert.instanceOf(error, WorkflowError.DuplicateWorkflowType)
            assert.strictEqual(error.workflowType, type)
          }))

        it.effect("register_without_effects executes and writes no outbox rows", () =>
          Effect.gen(function*() {
            const store = yield* WorkflowStore.WorkflowStore
            const type = uniqueType("effectless")
            const E = makeEffectlessWorkflow(type)
            const engine = yield* WorkflowRuntime.builder(store).registerWithoutEffects(E).buildEngine()
            assert.strictEqual(engine.runtime.workflowCount(), 1)
            assert.strictEqual(engine.runtime.service, engine.service)
            const outcome = yield* engine.service.execute(E, new EffectlessIncrement({ id: "wf-1" }))
            assert.deepStrictEqual(outcome, ExecuteOutcome.Accepted({ eventsAppended: 1 }))
            yield* engine.service.execute(E, new EffectlessIncrement({ id: "wf-1" }))
            assert.deepStrictEqual(yield* engine.service.fetchLatestState(E, "wf-1"), { value: 2 })
            assert.deepStrictEqual(yield* rowsOf("effect", type), [])
            assert.deepStrictEqual(yield* rowsOf("timer", type), [])
          }))

        it.effect("run(shutdown) runs the workers until the shutdown effect completes", () =>
          Effect.gen(function*() {
            const store = yield* WorkflowStore.WorkflowStore
            const type = uniqueType("seed_run")
            const W = makeTestWorkflow(type)
            const runtime = yield* WorkflowRuntime.builder(store).register(makeTestHandler(W))
              .config(RuntimeConfig.make(fastConfig)).buildRuntime()
            const stop = yield* Deferred.make<void>()
            const running = yield* Effect.fork(runtime.run(Deferred.await(stop)))
            yield* runtime.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
            yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"])
            yield* awaitRows("effect", type, "effect processed", allProcessed(1))
            assert.isNull(running.unsafePoll(), "run returns only after the shutdown effect")
            yield* Deferred.succeed(stop, undefined)
            assert.isTrue(Exit.isSuccess(yield* awaitFiber("run", running)))
            // Workers are gone: a new effect stays pending.
            yield* runtime.service.execute(W, new Start({ id: "wf-2", mode: "RouteResult" }))
            yield* TestClock.adjust("1 second")
            yield* liveSleep("200 millis")
            assert.deepStrictEqual(yield* eventTypes(type, "wf-2"), ["Started"])
          }))

        it.effect("run(shutdown) succeeds when the shutdown effect fails", () =>
          Effect.gen(function*() {
            const store = yield* WorkflowStore.WorkflowStore
            const W = makeTestWorkflow(uniqueType("seed_run_fail"))
            const runtime = yield* WorkflowRuntime.builder(store).register(makeTestHandler(W))
              .config(RuntimeConfig.make(fastConfig)).buildRuntime()
            const stop = yield* Deferred.make<void, string>()
            const running = yield* Effect.fork(runtime.run(Deferred.await(stop)))
            yield* liveSleep("50 millis")
            yield* Deferred.fail(stop, "shutdown signal failed")
            assert.isTrue(Exit.isSuccess(yield* awaitFiber("run", running)))
          }))

        it.effect("run drains the workers when its fiber is interrupted", () =>
          Effect.gen(function*() {
            const store = yield* WorkflowStore.WorkflowStore
            const type = uniqueType("seed_run_interrupt")
            const W = makeTestWorkflow(type)
            const started = yield* Deferred.make<void>()
            const gate = yield* Deferred.make<void>()
            const handler = testHandler(W, (ctx) =>
              Deferred.succeed(started, undefined).pipe(
                Effect.zipRight(Deferred.await(gate)),
                Effect.as(routeCompleted(ctx, "finished while draining"))
              ))
            const runtime = yield* WorkflowRuntime.builder(store).register(handler)
              .config(RuntimeConfig.make(fastConfig)).buildRuntime()
            const running = yield* Effect.fork(runtime.run(Effect.never))
            yield* runtime.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
            yield* Deferred.await(started)
            const interrupting = yield* Effect.fork(Fiber.interrupt(running))
            yield* liveSleep("100 millis")
            assert.isNull(interrupting.unsafePoll(), "interruption waits for the handler in flight")
            yield* Deferred.succeed(gate, undefined)
            yield* awaitFiber("interruption", interrupting)
            assert.deepStrictEqual(yield* eventTypes(type, "wf-1"), ["Started", "Completed"])
            const [row] = yield* rowsOf("effect", type)
            assert.isNotNull(row.processedAt)
          }))

        for (const effectWorkers of [1, 3]) {
          it.scoped(`worker names in locked_by (${effectWorkers} effect worker(s))`, () =>
            Effect.gen(function*() {
              const store = yield* WorkflowStore.WorkflowStore
              const type = uniqueType(`worker_names_${effectWorkers}`)
              const W = makeTestWorkflow(type)
              const workerId = `${type}-worker`
              const running = yield* Ref.make(0)
              const gate = yield* Deferred.make<void>()
              const handler = testHandler(W, (ctx) =>
                Ref.update(running, (n) => n + 1).pipe(
                  Effect.zipRight(Deferred.await(gate)),
                  Effect.as(routeCompleted(ctx, "success"))
                ))
              const runtime = yield* WorkflowRuntime.builder(store).register(handler)
                .config(
                  RuntimeConfig.make({
                    ...fastConfig,
                    workerId,
                    effectWorkers,
                    claimBatchSize: 1,
                    handlerConcurrency: 1
                  })
                )
                .buildRuntime()
              const scope = yield* Scope.make()
              yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
              yield* Scope.extend(runtime.start, scope)
              yield* Effect.addFinalizer(() => Deferred.succeed(gate, undefined))
              for (let i = 0; i < effectWorkers; i++) {
                yield* runtime.service.execute(W, new Start({ id: `wf-${i}`, mode: "RouteResult" }))
              }
              yield* awaitCondition(
                "every worker running a handler",
                Effect.map(Ref.get(running), (n) => n === effectWorkers)
              )
              const names = (yield* rowsOf("effect", type)).map((row) => row.lockedBy).sort()
              const expected = effectWorkers === 1
                ? [`${workerId}-effect`]
                : Array.from({ length: effectWorkers }, (_, i) => `${workerId}-effect-${i}`)
              assert.deepStrictEqual(names, expected)
              yield* Deferred.succeed(gate, undefined)
              yield* awaitRows("effect", type, "effects processed", allProcessed(effectWorkers))
              yield* Scope.close(scope, Exit.void)
            }))
        }

        it.scoped("timer and effect workers claim under their names (2 timer workers, 1 effect worker)", () =>
          Effect.gen(function*() {
            const type = uniqueType("timer_names")
            const W = makeTestWorkflow(type)
            const workerId = `${type}-worker`
            const store = yield* WorkflowStore.WorkflowStore
            const claimers = { effect: new Set<string>(), timer: new Set<string>() }
            const lockedBy: Array<string> = []
            const recording: WorkflowStore.WorkflowStore["Type"] = {
              ...store,
              claim: (options) =>
                store.claim(options).pipe(Effect.tap((items) =>
                  Effect.sync(() => {
                    claimers[options.kind].add(options.workerId)
                    for (const item of items) if (item.kind === "timer") lockedBy.push(item.lockedBy)
                  })
                ))
            }
            const rt = yield* startRuntime([makeTestHandler(W)], { workerId, timerWorkers: 2 }, recording)
            assert.strictEqual(rt.runtime.workerId(), workerId)
            yield* enqueueRaw(type, "wf-1", { timers: [{ delay: 0, input: { type: "Ping", id: "wf-1" } }] })
            yield* awaitRows("timer", type, "timer processed", allProcessed(1))
            yield* awaitCondition("both timer workers claiming", Effect.sync(() => claimers.timer.size === 2))
            assert.deepStrictEqual([...claimers.timer].sort(), [`${workerId}-timer-0`, `${workerId}-timer-1`])
            assert.deepStrictEqual([...claimers.effect], [`${workerId}-effect`])
            assert.strictEqual(lockedBy.length, 1)
            assert.include([`${workerId}-timer-0`, `${workerId}-timer-1`], lockedBy[0])
          }))

        it.scoped("a runtime without registrations starts, claims nothing and shuts down", () =>
          Effect.gen(function*() {
            const rt = yield* startRuntime([])
            assert.strictEqual(rt.runtime.workflowCount(), 0)
            yield* liveSleep("100 millis")
            const { exit } = yield* shutdownWithin(rt, "5 seconds")
            assert.isTrue(Exit.isSuccess(exit))
          }))

        it("workerName follows ironflow's naming", () => {
          assert.strictEqual(WorkflowRuntime.workerName("w", "effect", 0, 1), "w-effect")
          assert.strictEqual(WorkflowRuntime.workerName("w", "effect", 2, 3), "w-effect-2")
          assert.strictEqual(WorkflowRuntime.workerName("w", "timer", 0, 1), "w-timer")
          assert.strictEqual(WorkflowRuntime.workerName("w", "timer", 0, 2), "w-timer-0")
        })
      })
    }
  )
