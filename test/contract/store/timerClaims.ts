/** WorkflowStore contract: claiming and settling timers. */
import { assert, describe } from "@effect/vitest"
import { Clock, Duration, Effect, Option, TestClock } from "effect"
import { WorkflowStore } from "ironflow"
import { commit, queueRows, timer, uniqueType } from "../../support/helpers.js"
import { claim, claimOne, LEASE, type SuiteIt, timeout } from "./common.js"

export const timerClaimsTests = (it: SuiteIt) => {
  describe("timer claims", () => {
    it.effect("claim_timer_returns_due_timer", () =>
      Effect.gen(function*() {
        const type = uniqueType("store")
        const now = yield* Clock.currentTimeMillis
        yield* commit({ workflowType: type, workflowId: "timer-claim-1" }, { timers: [timer(0, timeout("123"))] })
        const claimed = yield* claimOne("timer", type, "worker-1")
        assert.strictEqual(claimed.kind, "timer")
        assert.strictEqual(claimed.workflowId, "timer-claim-1")
        assert.deepStrictEqual(claimed.payload, timeout("123"))
        assert.strictEqual(claimed.attempts, 0)
        assert.strictEqual(claimed.dueAt.getTime(), now)
      }))

    it.effect("claim_timer_returns_none_for_future_timer", () =>
      Effect.gen(function*() {
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "timer-future-1" }, {
          timers: [timer("1 hour", timeout("456"))]
        })
        assert.deepStrictEqual(yield* claim("timer", type, "worker-1"), [])
        yield* TestClock.adjust(Duration.toMillis("1 hour") - 1)
        assert.deepStrictEqual(yield* claim("timer", type, "worker-1"), [], "not a millisecond early")
        yield* TestClock.adjust(1)
        const claimed = yield* claimOne("timer", type, "worker-1")
        assert.deepStrictEqual(claimed.payload, timeout("456"))
      }))

    it.effect("claim returns due timers earliest first", () =>
      Effect.gen(function*() {
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          timers: [
            timer("3 seconds", timeout("3")),
            timer("1 second", timeout("1")),
            timer("2 seconds", timeout("2"))
          ]
        })
        yield* TestClock.adjust("2 seconds")
        const due = yield* claim("timer", type, "worker-1", { limit: 10 })
        assert.deepStrictEqual(due.map((t) => t.payload), [timeout("1"), timeout("2")])
      }))

    it.effect("mark_timer_processed_removes_from_queue", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "timer-processed-1" }, {
          timers: [timer(0, timeout("789"))]
        })
        const claimed = yield* claimOne("timer", type, "worker-1")
        const now = yield* Clock.currentTimeMillis
        assert.deepStrictEqual(yield* store.complete("timer", "worker-1", [claimed.id]), [claimed.id])
        yield* TestClock.adjust(LEASE)
        assert.deepStrictEqual(yield* claim("timer", type, "worker-2"), [])
        const [row] = yield* queueRows("timers", type)
        assert.strictEqual(row.processedAt, now)
      }))

    it.effect("record_timer_failure_increments_attempts", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "timer-fail-1" }, { timers: [timer(0, timeout("fail"))] })
        const claimed = yield* claimOne("timer", type, "worker-1")
        const now = yield* Clock.currentTimeMillis
        assert.isTrue(
          yield* store.fail("timer", "worker-1", claimed.id, "workflow locked", {
            _tag: "RetryAfter",
            delay: Duration.seconds(1)
          })
        )
        const [row] = yield* queueRows("timers", type)
        assert.strictEqual(row.attempts, 1)
        assert.strictEqual(row.lastError, "workflow locked")
        assert.strictEqual(row.lockedUntil, now + 1_000)
        assert.isNull(row.lockedBy)
        assert.deepStrictEqual(yield* claim("timer", type, "worker-2"), [])
        yield* TestClock.adjust("1 second")
        assert.strictEqual((yield* claimOne("timer", type, "worker-2")).attempts, 1)
      }))

    it.effect("record_timer_failure_skips_stale_claim", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "stale-timer" }, { timers: [timer(0, timeout("stale"))] })
        const stale = yield* claimOne("timer", type, "worker-1")
        yield* TestClock.adjust(Duration.sum(LEASE, Duration.seconds(1)))
        const fresh = yield* claimOne("timer", type, "worker-2")
        assert.strictEqual(fresh.id, stale.id)
        const [before] = yield* queueRows("timers", type)

        assert.isFalse(
          yield* store.fail("timer", "worker-1", stale.id, "stale failure", {
            _tag: "RetryAfter",
            delay: Duration.seconds(1)
          })
        )
        assert.deepStrictEqual(yield* store.complete("timer", "worker-1", [stale.id]), [])
        assert.isFalse(yield* store.fail("timer", "worker-1", stale.id, "stale permanent", { _tag: "DeadLetter" }))

        const [after] = yield* queueRows("timers", type)
        assert.deepStrictEqual(after, before)
        assert.deepInclude(after, { lockedBy: "worker-2", attempts: 0, lastError: null, processedAt: null })
      }))

    it.effect("nextTimerDue is the earliest time a pending timer of the given types becomes claimable", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        const other = uniqueType("other")
        assert.deepStrictEqual(yield* store.nextTimerDue([type]), Option.none())
        assert.deepStrictEqual(yield* store.nextTimerDue([]), Option.none())
        const now = yield* Clock.currentTimeMillis
        yield* commit({ workflowType: other, workflowId: "id-1" }, {
          timers: [timer("1 second", timeout("other"))]
        })
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          timers: [timer("2 hours", timeout("late")), timer("1 hour", timeout("soon"))]
        })
        const due = (types: ReadonlyArray<string>) =>
          Effect.map(store.nextTimerDue(types), Option.map((d) => d.getTime()))
        assert.deepStrictEqual(yield* due([type]), Option.some(now + 3_600_000))
        assert.deepStrictEqual(yield* due([type, other]), Option.some(now + 1_000))

        // A claimed timer is not due again before its lease ends; a backing-off one before its retry time.
        yield* TestClock.adjust("1 hour")
        const claimed = yield* claimOne("timer", type, "worker-1")
        const claimedAt = yield* Clock.currentTimeMillis
        assert.deepStrictEqual(yield* due([type]), Option.some(claimedAt + Duration.toMillis(LEASE)))
        yield* store.fail("timer", "worker-1", claimed.id, "boom", {
          _tag: "RetryAfter",
          delay: Duration.seconds(10)
        })
        assert.deepStrictEqual(yield* due([type]), Option.some(claimedAt + 10_000))
        yield* TestClock.adjust("10 seconds")
        const again = yield* claimOne("timer", type, "worker-1")
        yield* store.fail("timer", "worker-1", again.id, "boom", { _tag: "DeadLetter" })
        assert.deepStrictEqual(yield* due([type]), Option.some(now + 7_200_000), "dead letters are not due")
      }))
  })
}
