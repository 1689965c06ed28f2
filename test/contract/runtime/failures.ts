/** WorkflowRuntime contract: failures, retries and dead letters. */
import { assert, describe } from "@effect/vitest"
import { Clock, Deferred, Effect, Equal, Option, Ref, TestClock } from "effect"
import { DeadLetters, EffectContext, RetryPolicy, WorkflowService } from "ironflow"
import { randomUUID } from "node:crypto"
import { HandlerFailure, makeTestWorkflow, Start } from "../../support/fixtures.js"
import {
  awaitCondition,
  awaitEventTypes,
  awaitRows,
  enqueueRaw,
  liveSleep,
  rowsOf,
  runtimeLayer,
  startRuntime,
  storedEvents,
  TEST_MAX_ATTEMPTS,
  uniqueType
} from "../../support/runtimeHarness.js"
import { allProcessed, makeInvocationLog, routeCompleted, type SuiteIt, testHandler } from "./common.js"

export const failuresTests = (it: SuiteIt) => {
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
          (ctx) => log.record(ctx).pipe(Effect.zipRight(Effect.fail(new HandlerFailure({ message: "always broken" }))))
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
            (ctx) => log.record(ctx, type).pipe(Effect.zipRight(Effect.fail(new HandlerFailure({ message: "no" })))),
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
}
