/** WorkflowStore contract: unique keys and snapshots. */
import { SqlClient } from "@effect/sql"
import { assert, describe } from "@effect/vitest"
import { Array as Arr, Deferred, Effect, Exit, Fiber, Option, Ref } from "effect"
import { Workflow, WorkflowError, WorkflowService, WorkflowStore } from "ironflow"
import {
  Close,
  Increment,
  initialTestState,
  makeTestHandler,
  makeTestWorkflow,
  makeUniqueKeyWorkflow,
  Open
} from "../../support/fixtures.js"
import {
  commit,
  countEvents,
  fullReplay,
  instanceRow,
  liveSleep,
  makeService,
  uniqueType,
  writes
} from "../../support/helpers.js"
import { Commit, instance, Rollback, type SuiteIt } from "./common.js"

export const uniqueKeysAndSnapshotsTests = (it: SuiteIt) => {
  describe("unique keys", () => {
    it.effect("unique_key_conflict_rejects_second_active_workflow", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "order-1", uniqueKey: "customer-42" }, {
          events: [{ type: "Opened" }]
        })
        const ran = yield* Ref.make(false)
        const error = yield* store.withInstance(
          instance(type, "order-2", "customer-42"),
          () => Effect.as(Ref.set(ran, true), Rollback({ value: undefined }))
        ).pipe(Effect.flip)
        assert.instanceOf(error, WorkflowError.UniqueKeyConflict)
        assert.deepInclude(error, { workflowType: type, uniqueKey: "customer-42" })
        assert.isFalse(yield* Ref.get(ran))
        assert.isTrue(Option.isNone(yield* instanceRow(type, "order-2")))
        assert.deepStrictEqual(
          Option.map(yield* instanceRow(type, "order-1"), (r) => r.uniqueKey),
          Option.some("customer-42")
        )
      }))

    it.effect("unique_key_different_workflow_types_are_isolated", () =>
      Effect.gen(function*() {
        const typeA = uniqueType("store_a")
        const typeB = uniqueType("store_b")
        const a = yield* commit({ workflowType: typeA, workflowId: "a-1", uniqueKey: "shared" }, {
          events: [{ type: "A" }]
        })
        const b = yield* commit({ workflowType: typeB, workflowId: "b-1", uniqueKey: "shared" }, {
          events: [{ type: "B" }]
        })
        assert.deepStrictEqual([a, b], [
          { _tag: "Done", value: undefined, committed: true },
          { _tag: "Done", value: undefined, committed: true }
        ])
      }))

    it.effect("unique_key_released_after_workflow_completes", () =>
      Effect.gen(function*() {
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "first", uniqueKey: "k" }, {
          events: [{ type: "Done" }],
          completed: true
        })
        const second = yield* commit({ workflowType: type, workflowId: "second", uniqueKey: "k" }, {
          events: [{ type: "A" }]
        })
        assert.deepStrictEqual(second, { _tag: "Done", value: undefined, committed: true })
      }))

    it.effect("unique_key_idempotent_reexecution_succeeds", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "order-1", uniqueKey: "k" }, { events: [{ type: "A" }] })
        const again = yield* store.withInstance(
          instance(type, "order-1", "k"),
          (locked) => Effect.succeed(Rollback({ value: locked.events.length }))
        )
        assert.deepStrictEqual(again, { _tag: "Done", value: 1, committed: false })
      }))

    it.effect("the unique key is recorded only when the instance is created", () =>
      Effect.gen(function*() {
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "order-1" }, { events: [{ type: "A" }] })
        yield* commit({ workflowType: type, workflowId: "order-1", uniqueKey: "late" }, { events: [{ type: "B" }] })
        assert.deepStrictEqual(
          Option.map(yield* instanceRow(type, "order-1"), (r) => r.uniqueKey),
          Option.some(null)
        )
        const other = yield* commit({ workflowType: type, workflowId: "order-2", uniqueKey: "late" }, {
          events: [{ type: "A" }]
        })
        assert.strictEqual(other._tag, "Done")
      }))

    it.effect("unique_key_concurrent_conflict_one_wins_one_loses", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        const winnerInside = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const winner = yield* store.withInstance(instance(type, "winner", "race"), () =>
          Effect.gen(function*() {
            yield* Deferred.succeed(winnerInside, undefined)
            yield* Deferred.await(release)
            return Commit({ writes: writes({ events: [{ type: "Won" }] }), value: "winner" })
          })).pipe(Effect.fork)
        yield* Deferred.await(winnerInside)
        // The loser's insert waits on the winner's open transaction, then fails on its commit.
        const loser = yield* store.withInstance(
          instance(type, "loser", "race"),
          () => Effect.succeed(Commit({ writes: writes({ events: [{ type: "Lost" }] }), value: "loser" }))
        ).pipe(Effect.fork)
        yield* liveSleep("200 millis")
        assert.isNull(loser.unsafePoll(), "the loser waits while the winner is undecided")
        yield* Deferred.succeed(release, undefined)
        assert.deepStrictEqual(yield* Fiber.join(winner), { _tag: "Done", value: "winner", committed: true })
        const lost = yield* Fiber.await(loser)
        assert.isTrue(Exit.isFailure(lost))
        const error = yield* Effect.flip(lost)
        assert.instanceOf(error, WorkflowError.UniqueKeyConflict)
        assert.deepInclude(error, { workflowType: type, uniqueKey: "race" })
        assert.strictEqual(yield* countEvents(type, "loser"), 0)
      }))

    it.effect("concurrent first inputs to one instance with its unique key all succeed (service)", () =>
      Effect.gen(function*() {
        const workflow = makeUniqueKeyWorkflow(uniqueType("singleton"))
        const service = yield* makeService([Workflow.withoutEffects(workflow)])
        const outcomes = yield* Effect.forEach(
          Arr.range(1, 10),
          () => service.execute(workflow, new Open({ id: "same", key: "k" })),
          { concurrency: "unbounded" }
        )
        assert.isTrue(outcomes.every((o) => o._tag === "Accepted"))
        assert.strictEqual(yield* countEvents(workflow.type, "same"), 10)
      }))

    it.effect("a unique-key workflow can be reopened under its key once closed (service)", () =>
      Effect.gen(function*() {
        const workflow = makeUniqueKeyWorkflow(uniqueType("singleton"))
        const service = yield* makeService([Workflow.withoutEffects(workflow)])
        yield* service.execute(workflow, new Open({ id: "a", key: "k" }))
        const conflict = yield* service.execute(workflow, new Open({ id: "b", key: "k" })).pipe(Effect.flip)
        assert.instanceOf(conflict, WorkflowError.UniqueKeyConflict)
        yield* service.execute(workflow, new Close({ id: "a" }))
        const reopened = yield* service.execute(workflow, new Open({ id: "b", key: "k" }))
        assert.deepStrictEqual(reopened, { _tag: "Accepted", eventsAppended: 1 })
      }))
  })

  describe("snapshots", () => {
    const sevenIncrements = Effect.gen(function*() {
      const workflow = makeTestWorkflow(uniqueType())
      const service = yield* makeService([makeTestHandler(workflow)], { snapshotEvery: 3 })
      for (let i = 0; i < 7; i++) yield* service.execute(workflow, new Increment({ id: "snap", withEffect: false }))
      return { workflow, service }
    })

    it.effect("with snapshotEvery 3, seven events leave a snapshot at sequence 6 equal to a full replay", () =>
      Effect.gen(function*() {
        const { service, workflow } = yield* sevenIncrements
        const row = yield* instanceRow(workflow.type, "snap")
        assert.isTrue(Option.isSome(row))
        if (Option.isNone(row)) return
        assert.strictEqual(row.value.snapshotSequence, 6)
        assert.strictEqual(row.value.snapshotVersion, workflow.stateVersion)
        assert.deepStrictEqual(row.value.snapshotData, { ...initialTestState, counter: 6 })

        const events = yield* service.fetchWorkflowEvents(workflow.type, "snap")
        const replayed = fullReplay(workflow, events)
        assert.deepStrictEqual(replayed, { ...initialTestState, counter: 7 })
        assert.deepStrictEqual(yield* service.fetchLatestState(workflow, "snap"), replayed)
        assert.deepStrictEqual(yield* service.fetchLatestStateDynamic(workflow.type, "snap"), replayed)
      }))

    it.effect("executes after a snapshot continue the stream from the snapshot", () =>
      Effect.gen(function*() {
        const { service, workflow } = yield* sevenIncrements
        yield* service.execute(workflow, new Increment({ id: "snap", withEffect: false }))
        const events = yield* service.fetchWorkflowEvents(workflow.type, "snap")
        assert.deepStrictEqual(events.map((e) => e.sequence), Arr.range(1, 8))
        assert.deepStrictEqual(events[7].payload, { type: "Incremented", value: 8 })
      }))

    it.effect("a snapshot written under another stateVersion is ignored", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { service, workflow } = yield* sevenIncrements
        // A decodable snapshot that would be believed if its version were not checked
        // (later Incremented events only set the counter, so a forged status would survive).
        yield* sql`
          UPDATE ironflow.workflow_instances
          SET snapshot_version = 'another-state-schema',
              snapshot_data = ${JSON.stringify({ status: "stopped", value: "forged", counter: 999 })}::jsonb
          WHERE workflow_type = ${workflow.type} AND workflow_id = 'snap'`
        const replayed = fullReplay(workflow, yield* service.fetchWorkflowEvents(workflow.type, "snap"))
        assert.deepStrictEqual(replayed, { ...initialTestState, counter: 7 })
        assert.deepStrictEqual(yield* service.fetchLatestState(workflow, "snap"), replayed)
        assert.deepStrictEqual(yield* service.fetchLatestStateDynamic(workflow.type, "snap"), replayed)
        yield* service.execute(workflow, new Increment({ id: "snap", withEffect: false }))
        const events = yield* service.fetchWorkflowEvents(workflow.type, "snap")
        assert.deepStrictEqual(events[events.length - 1].payload, { type: "Incremented", value: 8 })
        assert.deepStrictEqual(yield* service.fetchLatestState(workflow, "snap"), fullReplay(workflow, events))
        assert.deepStrictEqual(
          Option.map(yield* instanceRow(workflow.type, "snap"), (r) => r.completedAt),
          Option.some(null),
          "the forged terminal status was not used"
        )
      }))

    it.effect("a snapshot that no longer decodes is ignored", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { service, workflow } = yield* sevenIncrements
        yield* sql`
          UPDATE ironflow.workflow_instances SET snapshot_data = ${JSON.stringify({ garbage: true })}::jsonb
          WHERE workflow_type = ${workflow.type} AND workflow_id = 'snap'`
        const replayed = fullReplay(workflow, yield* service.fetchWorkflowEvents(workflow.type, "snap"))
        assert.deepStrictEqual(yield* service.fetchLatestState(workflow, "snap"), replayed)
        assert.deepStrictEqual(yield* service.fetchLatestStateDynamic(workflow.type, "snap"), replayed)
        yield* service.execute(workflow, new Increment({ id: "snap", withEffect: false }))
        const events = yield* service.fetchWorkflowEvents(workflow.type, "snap")
        assert.deepStrictEqual(events.map((e) => e.sequence), Arr.range(1, 8))
        assert.deepStrictEqual(events[7].payload, { type: "Incremented", value: 8 })
      }))

    it.effect("snapshotEvery 0 writes no snapshot", () =>
      Effect.gen(function*() {
        const workflow = makeTestWorkflow(uniqueType())
        const service = yield* makeService([makeTestHandler(workflow)], { snapshotEvery: 0 })
        for (let i = 0; i < 4; i++) {
          yield* service.execute(workflow, new Increment({ id: "nosnap", withEffect: false }))
        }
        assert.deepStrictEqual(
          Option.map(yield* instanceRow(workflow.type, "nosnap"), (r) => r.snapshotSequence),
          Option.some(null)
        )
        assert.strictEqual(service.config.snapshotEvery, 0)
        assert.deepStrictEqual(WorkflowService.makeConfig({ snapshotEvery: 0 }).snapshotEvery, 0)
      }))
  })
}
