/** WorkflowRuntime contract: shutdown. */
import { assert, describe } from "@effect/vitest"
import { Deferred, Effect, Exit, Ref } from "effect"
import { makeTestWorkflow, Start } from "../../support/fixtures.js"
import {
  awaitRows,
  eventTypes,
  live,
  liveSleep,
  rowsOf,
  serviceFor,
  startRuntime,
  uniqueType
} from "../../support/runtimeHarness.js"
import { awaitFiber, makeInvocationLog, routeCompleted, shutdownWithin, type SuiteIt, testHandler } from "./common.js"

export const shutdownTests = (it: SuiteIt) => {
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
}
