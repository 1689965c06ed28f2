/** WorkflowStore contract: dead letters. */
import { SqlClient } from "@effect/sql"
import { assert, describe } from "@effect/vitest"
import { Array as Arr, Clock, Duration, Effect, Option, TestClock } from "effect"
import { WorkflowStore } from "ironflow"
import { commit, queueRows, timer, uniqueType } from "../../support/helpers.js"
import { claim, claimOne, deadEffect, sendEmail, type SuiteIt, timeout } from "./common.js"

export const deadLettersTests = (it: SuiteIt) => {
  describe("dead letters", () => {
    it.effect("effect_permanent_failure_dead_letters_immediately", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, { effects: [sendEmail("fail@example.com")] })
        const effect = yield* claimOne("effect", type, "worker-1")
        const now = yield* Clock.currentTimeMillis
        assert.isTrue(yield* store.fail("effect", "worker-1", effect.id, "boom", { _tag: "DeadLetter" }))

        const deadLetters = yield* store.fetchDeadLetters("effect", { workflowType: type })
        assert.strictEqual(deadLetters.length, 1)
        const dead = deadLetters[0]
        assert.strictEqual(dead.kind, "effect")
        assert.strictEqual(dead.id, effect.id)
        assert.strictEqual(dead.workflowId, "id-1")
        assert.deepStrictEqual(dead.payload, sendEmail("fail@example.com"))
        assert.strictEqual(dead.attempts, 1)
        assert.deepStrictEqual(dead.lastError, Option.some("boom"))
        assert.strictEqual(dead.deadLetteredAt.getTime(), now)

        yield* TestClock.adjust("1 day")
        assert.deepStrictEqual(yield* claim("effect", type, "worker-1"), [], "a dead letter is never claimed")
        assert.deepStrictEqual(yield* store.fetchPending(type, "id-1"), [])
      }))

    it.effect("a row is a dead letter only when dead-lettered, whatever its attempts", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, { effects: [sendEmail("many")] })
        yield* sql`UPDATE ironflow.outbox SET attempts = 1000, last_error = 'old' WHERE workflow_type = ${type}`
        assert.strictEqual(yield* store.countDeadLetters("effect", { workflowType: type }), 0)
        assert.deepStrictEqual(yield* store.fetchDeadLetters("effect", { workflowType: type }), [])
        const effect = yield* claimOne("effect", type, "worker-1")
        assert.strictEqual(effect.attempts, 1000)
      }))

    it.effect("retry_dead_letter_resets_attempts", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        const id = yield* deadEffect(type, "dlq-retry-1")
        assert.strictEqual((yield* store.fetchDeadLetters("effect", { workflowType: type })).length, 1)

        assert.isTrue(yield* store.retryDeadLetter("effect", id))
        const [row] = yield* queueRows("outbox", type)
        assert.deepInclude(row, {
          attempts: 0,
          lastError: null,
          lockedBy: null,
          lockedUntil: null,
          deadLetteredAt: null
        })
        assert.strictEqual(yield* store.countDeadLetters("effect", { workflowType: type }), 0)
        const effect = yield* claimOne("effect", type, "worker-1")
        assert.strictEqual(effect.id, id)
        assert.strictEqual(effect.attempts, 0)
      }))

    it.effect("retryDeadLetter does not reset a leased row", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, { effects: [sendEmail("leased")] })
        const effect = yield* claimOne("effect", type, "worker-1")
        const [before] = yield* queueRows("outbox", type)
        assert.isFalse(yield* store.retryDeadLetter("effect", effect.id))
        const [after] = yield* queueRows("outbox", type)
        assert.deepStrictEqual(after, before)
        assert.deepStrictEqual(
          yield* store.complete("effect", "worker-1", [effect.id]),
          [effect.id],
          "fencing holds"
        )
      }))

    it.effect("retryDeadLetter does not reset a row backing off", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, { effects: [sendEmail("backoff")] })
        const effect = yield* claimOne("effect", type, "worker-1")
        yield* store.fail("effect", "worker-1", effect.id, "later", {
          _tag: "RetryAfter",
          delay: Duration.minutes(1)
        })
        const [before] = yield* queueRows("outbox", type)
        assert.isFalse(yield* store.retryDeadLetter("effect", effect.id))
        const [after] = yield* queueRows("outbox", type)
        assert.deepStrictEqual(after, before)
        assert.strictEqual(after.attempts, 1)
        assert.deepStrictEqual(yield* claim("effect", type, "worker-2"), [], "still backing off")
      }))

    it.effect("retryDeadLetter returns false for a processed or unknown row", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, { effects: [sendEmail("done")] })
        const effect = yield* claimOne("effect", type, "worker-1")
        yield* store.complete("effect", "worker-1", [effect.id])
        assert.isFalse(yield* store.retryDeadLetter("effect", effect.id))
        assert.isFalse(yield* store.retryDeadLetter("effect", "01890000-0000-7000-8000-000000000000"))
        assert.isFalse(yield* store.retryDeadLetter("timer", effect.id), "an effect id is not a timer")
      }))

    it.effect("count_dead_letters_returns_correct_count", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        for (const i of [0, 1, 2]) yield* deadEffect(type, `count-dlq-${i}`)
        assert.strictEqual(yield* store.countDeadLetters("effect", { workflowType: type }), 3)
        assert.strictEqual(yield* store.countDeadLetters("effect", { workflowType: uniqueType("other") }), 0)
        assert.strictEqual(
          yield* store.countDeadLetters("effect", { workflowType: type, limit: 1, offset: 1 }),
          3,
          "count ignores limit and offset"
        )
        assert.strictEqual(yield* store.countDeadLetters("timer", { workflowType: type }), 0)
      }))

    it.effect("dead_letter_query_filters_by_both_type_and_id", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        const other = uniqueType("other")
        const target = `${type}-target`
        yield* deadEffect(type, target)
        yield* deadEffect(type, `${type}-b`)
        yield* deadEffect(type, `${type}-c`)
        yield* deadEffect(other, `${other}-x`)
        const byBoth = yield* store.fetchDeadLetters("effect", { workflowType: type, workflowId: target })
        assert.deepStrictEqual(byBoth.map((d) => d.workflowId), [target])
        assert.strictEqual((yield* store.fetchDeadLetters("effect", { workflowType: type })).length, 3)
        assert.strictEqual((yield* store.fetchDeadLetters("effect", { workflowId: target })).length, 1)
        assert.strictEqual(yield* store.countDeadLetters("effect", { workflowType: type, workflowId: target }), 1)
      }))

    it.effect("fetchDeadLetters returns the newest first, with limit and offset", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        for (const name of ["oldest", "middle", "newest"]) {
          yield* deadEffect(type, name)
          yield* TestClock.adjust("1 second")
        }
        const ids = (query: WorkflowStore.DeadLetterQuery) =>
          Effect.map(
            store.fetchDeadLetters("effect", { workflowType: type, ...query }),
            (d) => d.map((x) => x.workflowId)
          )
        assert.deepStrictEqual(yield* ids({}), ["newest", "middle", "oldest"])
        assert.deepStrictEqual(yield* ids({ limit: 2 }), ["newest", "middle"])
        assert.deepStrictEqual(yield* ids({ limit: 2, offset: 1 }), ["middle", "oldest"])
      }))

    it.effect("fetchDeadLetters returns at most 100 by default; countDeadLetters counts them all", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "many" }, {
          effects: Arr.range(1, 101).map((i) => sendEmail(`${i}`))
        })
        const now = yield* Clock.currentTimeMillis
        yield* sql`
          UPDATE ironflow.outbox SET attempts = 1, last_error = 'boom', dead_lettered_at = ${new Date(now)}
          WHERE workflow_type = ${type}`
        assert.strictEqual((yield* store.fetchDeadLetters("effect", { workflowType: type })).length, 100)
        assert.strictEqual(yield* store.countDeadLetters("effect", { workflowType: type }), 101)
        assert.strictEqual((yield* store.fetchDeadLetters("effect", { workflowType: type, offset: 100 })).length, 1)
      }))

    it.effect("timer_dead_letter_queries_and_retry", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, { timers: [timer(0, timeout("dlq-1"))] })
        const claimed = yield* claimOne("timer", type, "worker-1")
        assert.isTrue(yield* store.fail("timer", "worker-1", claimed.id, "cannot execute", { _tag: "DeadLetter" }))

        const deadLetters = yield* store.fetchDeadLetters("timer", { workflowType: type })
        assert.strictEqual(deadLetters.length, 1)
        assert.strictEqual(deadLetters[0].kind, "timer")
        assert.deepStrictEqual(deadLetters[0].payload, timeout("dlq-1"))
        assert.deepStrictEqual(deadLetters[0].lastError, Option.some("cannot execute"))
        assert.strictEqual(yield* store.countDeadLetters("timer", { workflowType: type }), 1)
        assert.strictEqual(yield* store.countDeadLetters("effect", { workflowType: type }), 0)
        assert.deepStrictEqual(yield* claim("timer", type, "worker-1"), [])

        assert.isTrue(yield* store.retryDeadLetter("timer", claimed.id))
        const [row] = yield* queueRows("timers", type)
        assert.strictEqual(row.attempts, 0)
        assert.isNull(row.deadLetteredAt)
        const again = yield* claimOne("timer", type, "worker-1")
        assert.strictEqual(again.id, claimed.id)
      }))
  })
}
