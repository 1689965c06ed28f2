/** WorkflowStore contract: claiming, leasing and settling effects. */
import { SqlClient } from "@effect/sql"
import { assert, describe } from "@effect/vitest"
import { Clock, Duration, Effect, TestClock } from "effect"
import { WorkflowStore } from "ironflow"
import { commit, queueRows, timer, uniqueType } from "../../support/helpers.js"
import { claim, claimOne, LEASE, sendEmail, type SuiteIt, timeout } from "./common.js"

export const effectClaimsTests = (it: SuiteIt) => {
  describe("effect claims", () => {
    it.effect("claim_effect_returns_pending_effect", () =>
      Effect.gen(function*() {
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "claim-1" }, { effects: [sendEmail("claim@example.com")] })
        const now = yield* Clock.currentTimeMillis
        const effect = yield* claimOne("effect", type, "worker-1")
        assert.strictEqual(effect.kind, "effect")
        assert.strictEqual(effect.workflowType, type)
        assert.strictEqual(effect.workflowId, "claim-1")
        assert.deepStrictEqual(effect.payload, sendEmail("claim@example.com"))
        assert.strictEqual(effect.attempts, 0)
        assert.strictEqual(effect.lockedBy, "worker-1")
        const [row] = yield* queueRows("outbox", type)
        assert.strictEqual(row.lockedBy, "worker-1")
        assert.strictEqual(row.lockedUntil, now + Duration.toMillis(LEASE))
      }))

    it.effect("claim_effect_returns_none_when_empty", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* claim("effect", uniqueType("store"), "worker-1"), [])
      }))

    it.effect("claim with no workflow types claims nothing", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, { effects: [sendEmail("a")] })
        const claimed = yield* store.claim({
          kind: "effect",
          workerId: "worker-1",
          workflowTypes: [],
          limit: 10,
          lease: LEASE
        })
        assert.deepStrictEqual(claimed, [])
        assert.deepStrictEqual(yield* claim("effect", type, "worker-1", { limit: 0 }), [], "nor does a limit of 0")
        assert.strictEqual((yield* claim("effect", type, "worker-1")).length, 1, "the row was left claimable")
      }))

    it.effect("unknown_workflow_type_is_not_claimed", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const retired = uniqueType("retired")
        const registered = uniqueType("store")
        yield* commit({ workflowType: retired, workflowId: "id-1" }, { effects: [sendEmail("a")] })
        yield* commit({ workflowType: retired, workflowId: "id-1" }, { timers: [timer(0, timeout("t"))] })
        assert.deepStrictEqual(yield* claim("effect", registered, "worker-1", { limit: 10 }), [])
        assert.deepStrictEqual(yield* claim("timer", registered, "worker-1", { limit: 10 }), [])
        for (const table of ["outbox", "timers"] as const) {
          const [row] = yield* queueRows(table, retired)
          assert.deepInclude(row, {
            attempts: 0,
            lockedBy: null,
            lastError: null,
            processedAt: null,
            deadLetteredAt: null
          })
        }
        assert.strictEqual(yield* store.countDeadLetters("effect", { workflowType: retired }), 0)
      }))

    it.effect("claim returns the oldest effects first, up to the limit", () =>
      Effect.gen(function*() {
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "a" }, { effects: [sendEmail("1"), sendEmail("2")] })
        yield* TestClock.adjust("1 second")
        yield* commit({ workflowType: type, workflowId: "b" }, { effects: [sendEmail("3")] })
        const firstTwo = yield* claim("effect", type, "worker-1", { limit: 2 })
        assert.deepStrictEqual(firstTwo.map((e) => e.payload), [sendEmail("1"), sendEmail("2")])
        const rest = yield* claim("effect", type, "worker-2", { limit: 2 })
        assert.deepStrictEqual(rest.map((e) => e.payload), [sendEmail("3")])
      }))

    it.effect("claim_effect_respects_lock_duration", () =>
      Effect.gen(function*() {
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "lock-test" }, { effects: [sendEmail("lock@example.com")] })
        const first = yield* claimOne("effect", type, "worker-1")
        assert.deepStrictEqual(yield* claim("effect", type, "worker-2"), [], "a leased effect is not claimable")
        yield* TestClock.adjust(Duration.toMillis(LEASE) - 1)
        assert.deepStrictEqual(yield* claim("effect", type, "worker-2"), [], "not before the lease ends")
        yield* TestClock.adjust(1)
        const second = yield* claimOne("effect", type, "worker-2")
        assert.strictEqual(second.id, first.id, "claimable again once the lease has expired")
        assert.strictEqual(second.attempts, 0, "an expired lease is not a failed attempt")
      }))

    it.effect("lock_expiration_allows_retry_by_another_worker", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "crashed" }, { effects: [sendEmail("crash@example.com")] })
        const now = yield* Clock.currentTimeMillis
        yield* sql`
          UPDATE ironflow.outbox SET locked_by = 'crashed-worker', locked_until = ${new Date(now - 1_000)}
          WHERE workflow_type = ${type}`
        const effect = yield* claimOne("effect", type, "worker-2")
        assert.strictEqual(effect.workflowId, "crashed")
        const [row] = yield* queueRows("outbox", type)
        assert.strictEqual(row.lockedBy, "worker-2")
      }))

    it.effect("mark_processed_removes_effect_from_queue", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "processed-1" }, {
          effects: [sendEmail("done@example.com")]
        })
        const effect = yield* claimOne("effect", type, "worker-1")
        const now = yield* Clock.currentTimeMillis
        assert.deepStrictEqual(yield* store.complete("effect", "worker-1", [effect.id]), [effect.id])
        yield* TestClock.adjust(LEASE)
        assert.deepStrictEqual(yield* claim("effect", type, "worker-2"), [])
        const [row] = yield* queueRows("outbox", type)
        assert.strictEqual(row.processedAt, now)
        assert.isNull(row.lockedBy)
        assert.isNull(row.lockedUntil)
        assert.isFalse(
          yield* store.fail("effect", "worker-1", effect.id, "late", { _tag: "DeadLetter" }),
          "a processed row cannot fail"
        )
        assert.deepStrictEqual(yield* store.complete("effect", "worker-1", [effect.id]), [], "nor complete twice")
      }))

    it.effect("complete changes only the rows the worker holds", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, { effects: [sendEmail("1"), sendEmail("2")] })
        const mine = yield* claimOne("effect", type, "worker-1")
        const theirs = yield* claimOne("effect", type, "worker-2")
        assert.deepStrictEqual(yield* store.complete("effect", "worker-1", [mine.id, theirs.id]), [mine.id])
        const rows = yield* queueRows("outbox", type)
        const other = rows.find((row) => row.id === theirs.id)!
        assert.isNull(other.processedAt)
        assert.strictEqual(other.lockedBy, "worker-2")
      }))

    it.effect("record_failure_increments_attempts_and_schedules_retry", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "retry-1" }, { effects: [sendEmail("retry@example.com")] })
        const effect = yield* claimOne("effect", type, "worker-1")
        const now = yield* Clock.currentTimeMillis
        const applied = yield* store.fail("effect", "worker-1", effect.id, "connection timeout", {
          _tag: "RetryAfter",
          delay: Duration.seconds(1)
        })
        assert.isTrue(applied)
        const [row] = yield* queueRows("outbox", type)
        assert.strictEqual(row.attempts, 1)
        assert.strictEqual(row.lastError, "connection timeout")
        assert.isNull(row.lockedBy)
        assert.strictEqual(row.lockedUntil, now + 1_000)
        assert.isNull(row.deadLetteredAt)
        assert.deepStrictEqual(yield* claim("effect", type, "worker-2"), [], "not claimable during the backoff")
        yield* TestClock.adjust(999)
        assert.deepStrictEqual(yield* claim("effect", type, "worker-2"), [])
        yield* TestClock.adjust(1)
        const again = yield* claimOne("effect", type, "worker-2")
        assert.strictEqual(again.attempts, 1)
      }))

    it.effect("release makes rows claimable again without counting an attempt", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, { effects: [sendEmail("1")] })
        const effect = yield* claimOne("effect", type, "worker-1")
        yield* store.release("effect", "worker-2", [effect.id])
        assert.deepStrictEqual(yield* claim("effect", type, "worker-3"), [], "only the holder can release")
        yield* store.release("effect", "worker-1", [effect.id])
        const again = yield* claimOne("effect", type, "worker-2")
        assert.strictEqual(again.id, effect.id)
        assert.strictEqual(again.attempts, 0)
      }))

    it.effect("extendLeases keeps a row leased past its first lease", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, { effects: [sendEmail("1")] })
        const effect = yield* claimOne("effect", type, "worker-1")
        yield* TestClock.adjust("20 seconds")
        yield* store.extendLeases("effect", "worker-2", [effect.id], Duration.minutes(10))
        yield* store.extendLeases("effect", "worker-1", [effect.id], LEASE)
        yield* TestClock.adjust("20 seconds")
        assert.deepStrictEqual(yield* claim("effect", type, "worker-2"), [], "still leased 40 s after the claim")
        yield* TestClock.adjust("10 seconds")
        const taken = yield* claimOne("effect", type, "worker-2")
        assert.strictEqual(taken.id, effect.id, "claimable when the extended lease ends (not 10 minutes later)")
      }))

    it.effect("record_failure_skips_stale_claim", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "stale-1" }, { effects: [sendEmail("stale@example.com")] })
        const stale = yield* claimOne("effect", type, "worker-1")
        yield* TestClock.adjust(Duration.sum(LEASE, Duration.seconds(1)))
        const fresh = yield* claimOne("effect", type, "worker-2")
        assert.strictEqual(fresh.id, stale.id)
        const [before] = yield* queueRows("outbox", type)

        assert.isFalse(
          yield* store.fail("effect", "worker-1", stale.id, "stale failure", {
            _tag: "RetryAfter",
            delay: Duration.seconds(1)
          })
        )
        assert.deepStrictEqual(yield* store.complete("effect", "worker-1", [stale.id]), [])
        assert.isFalse(yield* store.fail("effect", "worker-1", stale.id, "stale permanent", { _tag: "DeadLetter" }))

        const [after] = yield* queueRows("outbox", type)
        assert.deepStrictEqual(after, before, "the new holder's row is untouched")
        assert.deepInclude(after, {
          lockedBy: "worker-2",
          attempts: 0,
          lastError: null,
          processedAt: null,
          deadLetteredAt: null
        })
      }))
  })
}
