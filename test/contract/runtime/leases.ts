/** WorkflowRuntime contract: leases. */
import { assert, describe } from "@effect/vitest"
import { Deferred, Duration, Effect, Option, TestClock } from "effect"
import { WorkflowStore } from "ironflow"
import { makeTestWorkflow, Start, type TestInput } from "../../support/fixtures.js"
import {
  awaitEventTypes,
  awaitRows,
  enqueueRaw,
  live,
  liveSleep,
  rowsOf,
  startRuntime,
  uniqueType
} from "../../support/runtimeHarness.js"
import { allProcessed, makeInvocationLog, routeCompleted, type SuiteIt, testHandler } from "./common.js"

export const leasesTests = (it: SuiteIt) => {
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
}
