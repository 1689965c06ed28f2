/** WorkflowStore contract: timers set and cancelled by units of work. */
import { assert, describe } from "@effect/vitest"
import { Clock, Duration, Effect, TestClock } from "effect"
import { WorkflowStore } from "ironflow"
import { commit, queueRows, timer, uniqueType } from "../../support/helpers.js"
import { claim, claimOne, type SuiteIt, timeout } from "./common.js"

export const timersInUnitsOfWorkTests = (it: SuiteIt) => {
  describe("timers in units of work", () => {
    it.effect("schedule_timers_persists_to_timers_table", () =>
      Effect.gen(function*() {
        const type = uniqueType("store")
        const now = yield* Clock.currentTimeMillis
        yield* commit({ workflowType: type, workflowId: "id-1" }, { timers: [timer("1 hour", timeout("123"))] })
        const rows = yield* queueRows("timers", type)
        assert.strictEqual(rows.length, 1)
        assert.strictEqual(rows[0].workflowId, "id-1")
        assert.deepStrictEqual(rows[0].payload, { type: "Timeout", order_id: "123" })
        assert.strictEqual(rows[0].fireAt, now + 3_600_000, "fire_at = Clock now + delay")
        assert.isNull(rows[0].key)
        assert.strictEqual(rows[0].attempts, 0)
      }))

    it.effect("schedule_timer_with_key_replaces_existing", () =>
      Effect.gen(function*() {
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          timers: [timer("1 hour", timeout("v1"), "payment-timeout")]
        })
        const [first] = yield* queueRows("timers", type)
        yield* TestClock.adjust("1 minute")
        const now = yield* Clock.currentTimeMillis
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          timers: [timer("2 hours", timeout("v2"), "payment-timeout")]
        })
        const rows = yield* queueRows("timers", type)
        assert.strictEqual(rows.length, 1, "the pending timer is replaced, not added")
        assert.strictEqual(rows[0].id, first.id, "the replaced timer keeps its id")
        assert.deepStrictEqual(rows[0].payload, timeout("v2"))
        assert.strictEqual(rows[0].fireAt, now + 7_200_000)
      }))

    it.effect("cancel_timers_by_key", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          timers: [timer("1 hour", timeout("cancel-1"), "payment-timeout")]
        })
        const now = yield* Clock.currentTimeMillis
        yield* commit({ workflowType: type, workflowId: "id-1" }, { cancelTimers: ["payment-timeout"] })
        const rows = yield* queueRows("timers", type)
        assert.strictEqual(rows.length, 1)
        assert.strictEqual(rows[0].processedAt, now, "a cancelled timer is marked processed")
        assert.deepStrictEqual(yield* store.fetchPending(type, "id-1"), [])
        yield* TestClock.adjust("2 hours")
        assert.deepStrictEqual(yield* claim("timer", type, "worker-1"), [])
      }))

    it.effect("cancelling an unknown key or a keyless timer changes nothing", () =>
      Effect.gen(function*() {
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, { timers: [timer("1 hour", timeout("keyless"))] })
        yield* commit({ workflowType: type, workflowId: "id-1" }, { cancelTimers: ["no-such-key"] })
        const rows = yield* queueRows("timers", type)
        assert.strictEqual(rows.length, 1)
        assert.isNull(rows[0].processedAt)
      }))

    it.effect("cancelling and re-scheduling one key in one decision leaves one fresh pending timer", () =>
      Effect.gen(function*() {
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          timers: [timer("1 hour", timeout("old"), "deadline")]
        })
        const now = yield* Clock.currentTimeMillis
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          cancelTimers: ["deadline"],
          timers: [timer("10 minutes", timeout("new"), "deadline")]
        })
        const pending = (yield* queueRows("timers", type)).filter((row) => row.processedAt === null)
        assert.strictEqual(pending.length, 1)
        assert.deepStrictEqual(pending[0].payload, timeout("new"))
        assert.strictEqual(pending[0].fireAt, now + 600_000)
      }))

    it.effect("a key scheduled twice in one decision keeps the last timer", () =>
      Effect.gen(function*() {
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          timers: [timer("1 hour", timeout("first"), "k"), timer("2 hours", timeout("second"), "k")]
        })
        const rows = yield* queueRows("timers", type)
        assert.strictEqual(rows.length, 1)
        assert.deepStrictEqual(rows[0].payload, timeout("second"))
      }))

    it.effect("timer_key_scoped_to_workflow_instance", () =>
      Effect.gen(function*() {
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "a" }, { timers: [timer("1 hour", timeout("a"), "k")] })
        yield* commit({ workflowType: type, workflowId: "b" }, { timers: [timer("1 hour", timeout("b"), "k")] })
        const rows = yield* queueRows("timers", type)
        assert.deepStrictEqual(rows.map((row) => row.workflowId).sort(), ["a", "b"])
        assert.isTrue(rows.every((row) => row.processedAt === null))
      }))

    it.effect("schedule_timer_with_key_resets_retry_state", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          timers: [timer(0, timeout("v1"), "retry-key")]
        })
        const first = yield* claimOne("timer", type, "worker-1")
        assert.isTrue(
          yield* store.fail("timer", "worker-1", first.id, "boom", {
            _tag: "RetryAfter",
            delay: Duration.seconds(5)
          })
        )
        yield* TestClock.adjust("5 seconds")
        yield* claimOne("timer", type, "worker-1")
        const [leased] = yield* queueRows("timers", type)
        assert.strictEqual(leased.attempts, 1)
        assert.strictEqual(leased.lastError, "boom")
        assert.strictEqual(leased.lockedBy, "worker-1")
        assert.isNotNull(leased.lockedUntil)

        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          timers: [timer("1 hour", timeout("v2"), "retry-key")]
        })
        const rows = yield* queueRows("timers", type)
        assert.strictEqual(rows.length, 1)
        assert.strictEqual(rows[0].id, first.id)
        assert.strictEqual(rows[0].attempts, 0)
        assert.isNull(rows[0].lastError)
        assert.isNull(rows[0].lockedUntil)
        assert.isNull(rows[0].lockedBy)
        assert.deepStrictEqual(rows[0].payload, timeout("v2"))
      }))

    it.effect("mark_timer_processed_skips_rescheduled_timer", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          timers: [timer(0, { type: "Tick", n: 1 }, "heartbeat")]
        })
        const claimed = yield* claimOne("timer", type, "worker-1")
        // While the worker processes it, the instance re-arms the same key.
        const now = yield* Clock.currentTimeMillis
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          timers: [timer("1 hour", { type: "Tick", n: 2 }, "heartbeat")]
        })
        assert.deepStrictEqual(yield* store.complete("timer", "worker-1", [claimed.id]), [])
        const rows = yield* queueRows("timers", type)
        assert.strictEqual(rows.length, 1)
        assert.isNull(rows[0].processedAt, "the rescheduled timer stays pending")
        assert.strictEqual(rows[0].fireAt, now + 3_600_000)
        assert.strictEqual(rows[0].attempts, 0)
        assert.deepStrictEqual(rows[0].payload, { type: "Tick", n: 2 })
      }))

    it.effect("rescheduling a dead-lettered keyed timer makes it pending again", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, { timers: [timer(0, timeout("v1"), "k")] })
        const claimed = yield* claimOne("timer", type, "worker-1")
        yield* store.fail("timer", "worker-1", claimed.id, "boom", { _tag: "DeadLetter" })
        assert.strictEqual(yield* store.countDeadLetters("timer", { workflowType: type }), 1)
        yield* commit({ workflowType: type, workflowId: "id-1" }, { timers: [timer(0, timeout("v2"), "k")] })
        assert.strictEqual(yield* store.countDeadLetters("timer", { workflowType: type }), 0)
        const again = yield* claimOne("timer", type, "worker-1")
        assert.deepStrictEqual(again.payload, timeout("v2"))
        assert.strictEqual(again.attempts, 0)
      }))
  })
}
