/** WorkflowStore contract: the store's lifecycle and inspection queries. */
import { assert, describe } from "@effect/vitest"
import { Clock, Effect, Option, TestServices } from "effect"
import { Migrations, WorkflowStore } from "ironflow"
import { commit, timer, uniqueType } from "../../support/helpers.js"
import { claim, claimOne, sendEmail, type SuiteIt, timeout } from "./common.js"

export const lifecycleTests = (it: SuiteIt) => {
  describe("store lifecycle", () => {
    it.effect("migrations are applied once: running them again applies nothing", () =>
      Effect.gen(function*() {
        const all = yield* Migrations.all
        assert.isAtLeast(all.length, 4)
        assert.deepStrictEqual(all.map((m) => m.version), [...all.map((m) => m.version)].sort((a, b) => a - b))
        assert.deepStrictEqual(yield* Migrations.run, [])
      }))

    it.effect("a commit that enqueues effects or timers, and a retried dead letter, wake the workers", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        const woken = (ticket: Effect.Effect<void>, what: string) =>
          ticket.pipe(
            Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => `${what} were not woken` }),
            Effect.orDie,
            TestServices.provideLive
          )
        const effects = yield* store.wakeups.effects.ticket
        const timers = yield* store.wakeups.timers.ticket
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          effects: [sendEmail("wake")],
          timers: [timer("1 minute", timeout("wake"))]
        })
        yield* woken(effects, "effect workers")
        yield* woken(timers, "timer workers")

        const claimed = yield* claimOne("effect", type, "worker-1")
        yield* store.fail("effect", "worker-1", claimed.id, "boom", { _tag: "DeadLetter" })
        const retried = yield* store.wakeups.effects.ticket
        assert.isTrue(yield* store.retryDeadLetter("effect", claimed.id))
        yield* woken(retried, "effect workers after a retried dead letter")
      }))
  })

  describe("inspection", () => {
    it.effect("fetchPending lists the effects and timers still to run, earliest due first", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          effects: [sendEmail("done"), sendEmail("dead"), sendEmail("waiting")],
          timers: [timer("1 hour", timeout("later"), "deadline")]
        })
        const now = yield* Clock.currentTimeMillis
        const [done, dead] = yield* claim("effect", type, "worker-1", { limit: 2 })
        yield* store.complete("effect", "worker-1", [done.id])
        yield* store.fail("effect", "worker-1", dead.id, "boom", { _tag: "DeadLetter" })

        const pending = yield* store.fetchPending(type, "id-1")
        assert.deepStrictEqual(pending.map((p) => [p.kind, p.payload]), [
          ["effect", sendEmail("waiting")],
          ["timer", timeout("later")]
        ])
        const [effect, pendingTimer] = pending
        assert.strictEqual(effect.dueAt.getTime(), now)
        assert.isTrue(Option.isNone(effect.key))
        assert.isTrue(Option.isNone(effect.lockedBy))
        assert.strictEqual(pendingTimer.dueAt.getTime(), now + 3_600_000)
        assert.deepStrictEqual(pendingTimer.key, Option.some("deadline"))
        assert.deepStrictEqual(yield* store.fetchPending(type, "other"), [])
      }))

    it.effect("fetchInstance is none for an unknown instance", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        assert.isTrue(Option.isNone(yield* store.fetchInstance(uniqueType("store"), "nobody")))
      }))
  })
}
