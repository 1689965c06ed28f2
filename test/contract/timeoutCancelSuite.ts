/**
 * Handler timeouts and cancelling an instance from outside (issue #14 items 4
 * and 5), run against `PgWorkflowStore` over real PostgreSQL or the embedded
 * PGlite.
 *
 * Time is the TestClock (see runtimeSuite.ts): a handler's timeout runs on
 * the `Clock`, so an attempt times out when `TestClock.adjust` passes it,
 * while the workers look at the database on real time.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Layer, Metric, Option, Ref } from "effect"
import {
  type EffectContext,
  ExecuteOutcome,
  PgWorkflowStore,
  RetryPolicy,
  WorkflowError,
  WorkflowMetrics,
  WorkflowStore
} from "ironflow"
import { Cancel, makeCancellableWorkflow, Open, Ship } from "../support/cancelFixtures.js"
import { assertBackend } from "../support/database.js"
import { CompleteWith, makeTestWorkflow, Start, type TestInput, type TestWorkflow } from "../support/fixtures.js"
import {
  awaitCondition,
  awaitEventTypes,
  awaitRows,
  eventTypes,
  liveSleep,
  rowsOf,
  serviceFor,
  startRuntime,
  TEST_MAX_ATTEMPTS,
  uniqueType
} from "../support/runtimeHarness.js"

/** The timed-out attempts recorded on each outbox row of a type, oldest first. */
const timedOutAttempts = (workflowType: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ n: unknown }>`
      SELECT timed_out_attempts AS n FROM ironflow.outbox WHERE workflow_type = ${workflowType}
      ORDER BY created_at, id`
    return rows.map((row) => Number(row.n))
  })

const statsOf = (workflowType: string) =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore.WorkflowStore
    return (yield* store.queueStats).find((s) => s.kind === "effect" && s.workflowType === workflowType)
  })

const counterOf = (metric: typeof WorkflowMetrics.timedOut, workflowType: string) =>
  Effect.map(
    Metric.value(WorkflowMetrics.tagged(metric, { kind: "effect", workflow_type: workflowType })),
    (state) => state.count
  )

/** A handler of `TestWorkflow` that counts its attempts and runs `body` (which routes nothing unless it says so). */
const countingHandler = (
  workflow: TestWorkflow,
  attempts: Ref.Ref<number>,
  body: (ctx: EffectContext.EffectContext) => Effect.Effect<Option.Option<TestInput>>,
  options?: { readonly timeout?: Duration.DurationInput; readonly retryPolicy?: RetryPolicy.RetryPolicy }
) => workflow.handler((_effect, ctx) => Effect.zipRight(Ref.update(attempts, (n) => n + 1), body(ctx)), options)

const routeCompleted = (ctx: EffectContext.EffectContext, result: string) =>
  Option.some<TestInput>(new CompleteWith({ id: ctx.workflow.workflowId, result }))

export const suite = (label: string, database: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  it.layer(PgWorkflowStore.layer.pipe(Layer.provideMerge(database)), { timeout: "120 seconds" })(
    `Handler timeouts and cancellation (${label})`,
    (it) => {
      it.effect(`runs on ${label}: the database says so, and another connection sees the writes`, () =>
        assertBackend(label))

      describe("handler timeouts", () => {
        it.scoped(
          "an attempt past its timeout is a failed attempt ('timed out after 30 s'), retried, then dead-lettered; stats and metrics count it",
          () =>
            Effect.gen(function*() {
              const type = uniqueType("timeout_dead")
              const W = makeTestWorkflow(type)
              const attempts = yield* Ref.make(0)
              const handler = countingHandler(W, attempts, () => Effect.never, { timeout: "30 seconds" })
              const rt = yield* startRuntime([handler])
              yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
              yield* awaitCondition("the first attempt", Effect.map(Ref.get(attempts), (n) => n === 1))
              const [running] = yield* rowsOf("effect", type)
              assert.isNotNull(running.lockedBy, "held while the attempt runs")

              yield* awaitCondition(
                "a dead letter",
                Effect.map(rt.deadLetters.count({ workflowType: type }), (n) => n === 1),
                { advance: "5 seconds" }
              )
              assert.strictEqual(yield* Ref.get(attempts), TEST_MAX_ATTEMPTS, "retried on the policy")
              const [dead] = yield* rt.deadLetters.fetch({ workflowType: type })
              assert.strictEqual(dead.attempts, TEST_MAX_ATTEMPTS)
              assert.deepStrictEqual(dead.lastError, Option.some("timed out after 30 s"))
              const [row] = yield* rowsOf("effect", type)
              assert.isNull(row.lockedBy, "the row is not held by the hung handler")
              assert.isNull(row.processedAt)
              assert.deepStrictEqual(yield* timedOutAttempts(type), [TEST_MAX_ATTEMPTS])
              assert.deepStrictEqual(yield* eventTypes(type, "wf-1"), ["Started"])

              const stats = yield* statsOf(type)
              assert.strictEqual(stats?.timedOutAttempts, TEST_MAX_ATTEMPTS)
              assert.strictEqual(stats?.deadLetters, 1)
              assert.strictEqual(yield* counterOf(WorkflowMetrics.timedOut, type), TEST_MAX_ATTEMPTS)
              assert.strictEqual(yield* counterOf(WorkflowMetrics.failed, type), TEST_MAX_ATTEMPTS - 1)
              assert.strictEqual(yield* counterOf(WorkflowMetrics.deadLettered, type), 1)

              // A redriven dead letter starts afresh: no attempts, none timed out.
              assert.isTrue(yield* rt.deadLetters.retry(dead.id))
              const [redriven] = yield* rowsOf("effect", type)
              assert.strictEqual(redriven.attempts, 0)
              assert.deepStrictEqual(yield* timedOutAttempts(type), [0])
            })
        )

        it.scoped("a timed-out attempt that succeeds on a retry is processed; the timed-out attempt stays counted", () =>
          Effect.gen(function*() {
            const type = uniqueType("timeout_then_ok")
            const W = makeTestWorkflow(type)
            const attempts = yield* Ref.make(0)
            const handler = countingHandler(
              W,
              attempts,
              (ctx) =>
                ctx.attempt === 1 ? Effect.never : Effect.succeed(routeCompleted(ctx, `ok on attempt ${ctx.attempt}`)),
              { timeout: "1 minute" }
            )
            yield* startRuntime([handler])
            const service = yield* serviceFor([handler])
            yield* service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
            yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"], { advance: "20 seconds" })
            const [row] = yield* awaitRows("effect", type, "processed", (rows) => rows[0]?.processedAt !== null)
            assert.strictEqual(row.attempts, 1)
            assert.strictEqual(row.lastError, "timed out after 1 min")
            assert.deepStrictEqual(yield* timedOutAttempts(type), [1])
            // Processed rows leave the queue statistics.
            assert.isUndefined(yield* statsOf(type))
          }))

        it.scoped(
          "a handler that ignores interruption frees its slot and its row at the timeout; what it returns later is dropped",
          () =>
            Effect.gen(function*() {
              const type = uniqueType("timeout_uninterruptible")
              const W = makeTestWorkflow(type)
              const release = yield* Deferred.make<void>()
              const finished = yield* Deferred.make<void>()
              const attempts = yield* Ref.make(0)
              const handler = countingHandler(
                W,
                attempts,
                (ctx) =>
                  ctx.workflow.workflowId === "stuck"
                    ? Deferred.await(release).pipe(
                      Effect.zipRight(Deferred.succeed(finished, undefined)),
                      Effect.as(routeCompleted(ctx, "late")),
                      Effect.uninterruptible
                    )
                    : Effect.succeed(routeCompleted(ctx, "free")),
                { timeout: "5 seconds", retryPolicy: RetryPolicy.make({ maxAttempts: 1 }) }
              )
              // One worker, one handler slot, one row at a time: only a freed slot lets the second effect run.
              const rt = yield* startRuntime([handler], { handlerConcurrency: 1, claimBatchSize: 1 })
              yield* rt.service.execute(W, new Start({ id: "stuck", mode: "RouteResult" }))
              yield* awaitCondition("the stuck attempt", Effect.map(Ref.get(attempts), (n) => n === 1))
              yield* rt.service.execute(W, new Start({ id: "free", mode: "RouteResult" }))

              yield* awaitEventTypes(type, "free", ["Started", "Completed"], { advance: "1 second" })
              const dead = yield* awaitRows(
                "effect",
                type,
                "the stuck row dead-lettered",
                (rows) => rows.some((r) => r.workflowId === "stuck" && r.deadLetteredAt !== null)
              )
              const stuck = dead.find((r) => r.workflowId === "stuck")!
              assert.strictEqual(stuck.lastError, "timed out after 5 s")
              assert.isNull(stuck.lockedBy)
              assert.strictEqual(stuck.attempts, 1)

              // The handler ends by itself later: its result is not applied to the settled row.
              yield* Deferred.succeed(release, undefined)
              yield* Deferred.await(finished)
              yield* liveSleep("300 millis")
              assert.deepStrictEqual(yield* eventTypes(type, "stuck"), ["Started"])
              const [after] = (yield* rowsOf("effect", type)).filter((r) => r.workflowId === "stuck")
              assert.isNull(after.processedAt)
              assert.isNotNull(after.deadLetteredAt)
            })
        )

        it.scoped("a handler's own timeout overrides the runtime default", () =>
          Effect.gen(function*() {
            const longType = uniqueType("timeout_own")
            const defaultType = uniqueType("timeout_default")
            const Long = makeTestWorkflow(longType)
            const Default = makeTestWorkflow(defaultType)
            const attempts = yield* Ref.make(0)
            const oneMinute = (ctx: EffectContext.EffectContext) =>
              Effect.as(Effect.sleep("1 minute"), routeCompleted(ctx, "after a minute"))
            const rt = yield* startRuntime([
              countingHandler(Long, attempts, oneMinute, { timeout: "2 minutes" }),
              countingHandler(Default, attempts, oneMinute)
            ], { handlerTimeout: "10 seconds", effectLockDuration: "1 day" })
            assert.deepStrictEqual(rt.runtime.config().handlerTimeout, Option.some(Duration.seconds(10)))
            yield* rt.service.execute(Long, new Start({ id: "wf-1", mode: "RouteResult" }))
            yield* rt.service.execute(Default, new Start({ id: "wf-1", mode: "RouteResult" }))

            yield* awaitEventTypes(longType, "wf-1", ["Started", "Completed"], { advance: "5 seconds" })
            const [long] = yield* rowsOf("effect", longType)
            assert.strictEqual(long.attempts, 0)
            assert.isNull(long.lastError)
            assert.deepStrictEqual(yield* timedOutAttempts(longType), [0])

            yield* awaitCondition(
              "the default-timeout row dead",
              Effect.map(rt.deadLetters.count({ workflowType: defaultType }), (n) => n === 1),
              { advance: "5 seconds" }
            )
            const [dead] = yield* rowsOf("effect", defaultType)
            assert.strictEqual(dead.lastError, "timed out after 10 s")
            assert.deepStrictEqual(yield* timedOutAttempts(defaultType), [TEST_MAX_ATTEMPTS])
            assert.deepStrictEqual(yield* eventTypes(defaultType, "wf-1"), ["Started"])
          }))

        it.scoped("without a timeout (none set anywhere) an attempt runs as long as it takes", () =>
          Effect.gen(function*() {
            const type = uniqueType("timeout_none")
            const W = makeTestWorkflow(type)
            const attempts = yield* Ref.make(0)
            const rt = yield* startRuntime([
              countingHandler(W, attempts, (ctx) => Effect.as(Effect.sleep("2 hours"), routeCompleted(ctx, "slow")))
            ], { effectLockDuration: "1 day" })
            assert.isTrue(Option.isNone(rt.runtime.config().handlerTimeout))
            yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
            yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"], { advance: "10 minutes" })
            const [row] = yield* rowsOf("effect", type)
            assert.strictEqual(row.attempts, 0)
            assert.isNull(row.lastError)
            assert.strictEqual(yield* Ref.get(attempts), 1)
            assert.deepStrictEqual(yield* timedOutAttempts(type), [0])
            assert.strictEqual(yield* counterOf(WorkflowMetrics.timedOut, type), 0)
          }))
      })

      describe("cancel an instance from outside", () => {
        it.scoped("cancel executes the workflow's cancellation input: decide cancels the instance and its timer", () =>
          Effect.gen(function*() {
            const type = uniqueType("cancel")
            const W = makeCancellableWorkflow(type)
            const service = yield* serviceFor([W])
            const store = yield* WorkflowStore.WorkflowStore
            yield* service.execute(W, new Open({ id: "o-1" }))
            assert.strictEqual((yield* store.fetchPending(type, "o-1")).length, 1, "the ship timer")

            const outcome = yield* service.cancel(W, "o-1", "customer asked")
            assert.deepStrictEqual(outcome, ExecuteOutcome.Accepted({ eventsAppended: 1 }))
            assert.deepStrictEqual(yield* service.fetchLatestState(W, "o-1"), {
              status: "cancelled",
              reason: "customer asked"
            })
            assert.deepStrictEqual(yield* eventTypes(type, "o-1"), ["Opened", "Cancelled"])
            assert.deepStrictEqual(yield* store.fetchPending(type, "o-1"), [], "the timer was cancelled")
            const instance = yield* store.fetchInstance(type, "o-1")
            assert.isTrue(Option.isSome(Option.flatMap(instance, (i) => i.completedAt)), "terminal: completed")

            // The same outcome type as execute: a completed instance answers AlreadyCompleted.
            assert.deepStrictEqual(yield* service.cancel(W, "o-1", "again"), ExecuteOutcome.AlreadyCompleted)
          }))

        it.scoped("decide may refuse a cancellation: the rejection comes back and nothing is written", () =>
          Effect.gen(function*() {
            const type = uniqueType("cancel_rejected")
            const W = makeCancellableWorkflow(type)
            const service = yield* serviceFor([W])
            yield* service.execute(W, new Open({ id: "o-1" }))
            yield* service.execute(W, new Ship({ id: "o-1" }))
            assert.deepStrictEqual(
              yield* service.cancel(W, "o-1", "too late"),
              ExecuteOutcome.Rejected("cannot cancel: shipped")
            )
            // An instance that does not exist: decide sees the initial state, and this one refuses.
            assert.deepStrictEqual(
              yield* service.cancel(W, "nobody", "typo"),
              ExecuteOutcome.Rejected("no such order")
            )
            const store = yield* WorkflowStore.WorkflowStore
            assert.isTrue(Option.isNone(yield* store.fetchInstance(type, "nobody")))
            assert.deepStrictEqual(yield* eventTypes(type, "o-1"), ["Opened", "Shipped"])
          }))

        it.scoped("a workflow that declares no cancellation input refuses with CancelNotSupported, writing nothing", () =>
          Effect.gen(function*() {
            const type = uniqueType("cancel_none")
            const W = makeCancellableWorkflow(type, { cancel: "none" })
            const service = yield* serviceFor([W])
            yield* service.execute(W, new Open({ id: "o-1" }))
            const error = yield* Effect.flip(service.cancel(W, "o-1", "please"))
            assert.instanceOf(error, WorkflowError.CancelNotSupported)
            assert.strictEqual(error._tag, "CancelNotSupported")
            assert.include(error.message, `cannot cancel ${type}:o-1`)
            assert.include(error.message, "declares no cancellation input")
            assert.deepStrictEqual(yield* eventTypes(type, "o-1"), ["Opened"])
          }))

        it.scoped("a cancellation input of another instance, or one that throws, is a typed error", () =>
          Effect.gen(function*() {
            const elsewhere = makeCancellableWorkflow(uniqueType("cancel_elsewhere"), {
              cancel: (reason) => new Cancel({ id: "always-this-one", reason })
            })
            const throwing = makeCancellableWorkflow(uniqueType("cancel_throws"), {
              cancel: () => {
                throw new Error("boom")
              }
            })
            const service = yield* serviceFor([elsewhere, throwing])
            yield* service.execute(elsewhere, new Open({ id: "o-1" }))
            yield* service.execute(elsewhere, new Open({ id: "always-this-one" }))
            const wrong = yield* Effect.flip(service.cancel(elsewhere, "o-1", "r"))
            assert.strictEqual(wrong._tag, "CancelNotSupported")
            assert.include(wrong.message, "belongs to instance 'always-this-one'")
            assert.deepStrictEqual(yield* eventTypes(elsewhere.type, "always-this-one"), ["Opened"])

            const threw = yield* Effect.flip(service.cancel(throwing, "o-1", "r"))
            assert.strictEqual(threw._tag, "WorkflowFunctionError")
            assert.include(threw.message, "cancel of workflow")
            assert.include(threw.message, "boom")
          }))
      })
    }
  )
