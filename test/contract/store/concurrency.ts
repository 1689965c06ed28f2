/** WorkflowStore contract: concurrent units of work on one instance. */
import { assert, describe } from "@effect/vitest"
import { Array as Arr, Deferred, Effect, Either, Fiber, Option, Ref, TestServices } from "effect"
import { Workflow, WorkflowError, WorkflowStore } from "ironflow"
import { Increment, makeTestHandler, makeTestWorkflow, makeUniqueKeyWorkflow, Open } from "../../support/fixtures.js"
import { countEvents, liveSleep, makeService, typesOf, uniqueType, writes } from "../../support/helpers.js"
import { Commit, instance, type SuiteIt, type SuiteOptions } from "./common.js"

export const concurrencyTests = (it: SuiteIt, options: SuiteOptions) => {
  describe("concurrency", () => {
    it.effect("advisory_lock_blocks_concurrent_access_to_same_stream", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        const lockAcquired = yield* Deferred.make<void>()
        const canCommit = yield* Deferred.make<void>()
        const secondEntered = yield* Ref.make(false)

        const first = yield* store.withInstance(instance(type, "concurrent-1"), () =>
          Effect.gen(function*() {
            yield* Deferred.succeed(lockAcquired, undefined)
            yield* Deferred.await(canCommit)
            return Commit({ writes: writes({ events: [{ type: "First" }] }), value: undefined })
          })).pipe(Effect.fork)
        yield* Deferred.await(lockAcquired)

        const second = yield* store.withInstance(
          instance(type, "concurrent-1"),
          (locked) =>
            Effect.gen(function*() {
              yield* Ref.set(secondEntered, true)
              return Commit({ writes: writes({ events: [{ type: "Second" }] }), value: locked.events.length })
            })
        ).pipe(Effect.fork)

        yield* liveSleep("300 millis")
        assert.isFalse(yield* Ref.get(secondEntered), "the second unit of work waits for the lock")
        yield* Deferred.succeed(canCommit, undefined)
        yield* Fiber.join(first)
        const seen = yield* Fiber.join(second)
        assert.deepStrictEqual(seen, { _tag: "Done", value: 1, committed: true }, "it sees the first one's event")
        assert.deepStrictEqual(typesOf(yield* store.fetchEvents(type, "concurrent-1")), ["First", "Second"])
      }))

    if (options.concurrentTransactions) {
      it.effect("different_workflow_instances_can_execute_concurrently", () =>
        Effect.gen(function*() {
          const store = yield* WorkflowStore.WorkflowStore
          const type = uniqueType("store")
          const inside = yield* Ref.make(0)
          const allInside = yield* Deferred.make<void>()
          // Each unit of work holds its instance until all three hold theirs.
          const results = yield* Effect.forEach(
            [0, 1, 2],
            (task) =>
              store.withInstance(instance(type, `parallel-${task}`), () =>
                Effect.gen(function*() {
                  const order = yield* Ref.getAndUpdate(inside, (n) => n + 1)
                  if (order === 2) yield* Deferred.succeed(allInside, undefined)
                  yield* Deferred.await(allInside).pipe(
                    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => "instances were serialized" }),
                    Effect.orDie,
                    TestServices.provideLive
                  )
                  return Commit({ writes: writes({ events: [{ type: "Event", task }] }), value: order })
                })),
            { concurrency: "unbounded" }
          )
          assert.deepStrictEqual(results.map((r) => r._tag === "Done" ? r.value : -1).sort(), [0, 1, 2])
          for (const task of [0, 1, 2]) assert.strictEqual(yield* countEvents(type, `parallel-${task}`), 1)
        }))
    } else {
      it.effect("different_workflow_instances_can_execute_concurrently (single session: one after the other)", () =>
        Effect.gen(function*() {
          const store = yield* WorkflowStore.WorkflowStore
          const type = uniqueType("store")
          const order = yield* Ref.make(0)
          const results = yield* Effect.forEach(
            [0, 1, 2],
            (task) =>
              store.withInstance(instance(type, `parallel-${task}`), () =>
                Effect.map(
                  Ref.getAndUpdate(order, (n) => n + 1),
                  (acquired) => Commit({ writes: writes({ events: [{ type: "Event", task }] }), value: acquired })
                )),
            { concurrency: "unbounded" }
          )
          assert.deepStrictEqual(results.map((r) => r._tag === "Done" ? r.value : -1).sort(), [0, 1, 2])
          for (const task of [0, 1, 2]) assert.strictEqual(yield* countEvents(type, `parallel-${task}`), 1)
        }))
    }

    it.effect("50 concurrent executes on one instance yield exactly 50 events with sequences 1..50", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const workflow = makeTestWorkflow(uniqueType())
        const service = yield* makeService([makeTestHandler(workflow)])
        const outcomes = yield* Effect.forEach(
          Arr.range(1, 50),
          () => service.execute(workflow, new Increment({ id: "hot", withEffect: false })),
          { concurrency: "unbounded" }
        )
        assert.isTrue(outcomes.every((o) => o._tag === "Accepted"))
        const events = yield* store.fetchEvents(workflow.type, "hot")
        assert.deepStrictEqual(events.map((e) => e.sequence), Arr.range(1, 50))
        assert.deepStrictEqual(
          events.map((e) => (e.payload as { value: number }).value),
          Arr.range(1, 50),
          "every input saw the state left by the previous one"
        )
        const summary = yield* store.fetchInstance(workflow.type, "hot")
        assert.deepStrictEqual(Option.map(summary, (s) => s.eventCount), Option.some(50))
      }))

    it.effect("two concurrent first inputs with one unique key yield exactly one winner and one UniqueKeyConflict", () =>
      Effect.gen(function*() {
        const workflow = makeUniqueKeyWorkflow(uniqueType("singleton"))
        const service = yield* makeService([Workflow.withoutEffects(workflow)])
        const results = yield* Effect.all([
          Effect.either(service.execute(workflow, new Open({ id: "a", key: "shared" }))),
          Effect.either(service.execute(workflow, new Open({ id: "b", key: "shared" })))
        ], { concurrency: "unbounded" })
        const winners = results.filter(Either.isRight)
        const losers = results.filter(Either.isLeft)
        assert.strictEqual(winners.length, 1)
        assert.strictEqual(losers.length, 1)
        assert.deepStrictEqual(winners[0].right, { _tag: "Accepted", eventsAppended: 1 })
        const error = losers[0].left
        assert.instanceOf(error, WorkflowError.UniqueKeyConflict)
        assert.deepInclude(error, { workflowType: workflow.type, uniqueKey: "shared" })
        const listed = yield* service.listWorkflows(workflow.type)
        assert.strictEqual(listed.length, 1, "the loser leaves no instance")
      }))
  })
}
