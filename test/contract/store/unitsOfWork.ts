/** WorkflowStore contract: units of work and the JSON they store. */
import { assert, describe } from "@effect/vitest"
import { Clock, Effect, Option, Ref, TestClock } from "effect"
import { WorkflowStore } from "ironflow"
import { makeTestHandler, makeTestWorkflow, Stop } from "../../support/fixtures.js"
import {
  commit,
  countEvents,
  instanceRow,
  makeService,
  queueRows,
  timer,
  typesOf,
  uniqueType,
  writes
} from "../../support/helpers.js"
import { claim, Commit, instance, maxGlobalSequence, Rollback, sendEmail, type SuiteIt, timeout } from "./common.js"

export const unitsOfWorkTests = (it: SuiteIt) => {
  describe("units of work", () => {
    it.effect("begin_acquires_lock_and_returns_empty_events", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const result = yield* store.withInstance(
          instance(uniqueType("store")),
          (locked) => Effect.succeed(Rollback({ value: locked }))
        )
        assert.strictEqual(result._tag, "Done")
        if (result._tag !== "Done") return
        assert.deepStrictEqual(result.value.events, [])
        assert.strictEqual(result.value.nextSequence, 1)
        assert.isTrue(Option.isNone(result.value.snapshot))
      }))

    it.effect("append_events_and_commit_persists", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        const result = yield* commit({ workflowType: type, workflowId: "id-1" }, {
          events: [{ type: "Created", name: "test" }]
        })
        assert.deepStrictEqual(result, { _tag: "Done", value: undefined, committed: true })
        assert.strictEqual(yield* countEvents(type, "id-1"), 1)
        const events = yield* store.fetchEvents(type, "id-1")
        assert.deepStrictEqual(events[0].payload, { type: "Created", name: "test" })
      }))

    it.effect("begin_returns_previously_committed_events", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          events: [{ type: "A" }, { type: "B", value: 42 }]
        })
        const result = yield* store.withInstance(
          instance(type),
          (locked) => Effect.succeed(Rollback({ value: locked }))
        )
        assert.strictEqual(result._tag, "Done")
        if (result._tag !== "Done") return
        assert.deepStrictEqual(result.value.events.map(({ payload, sequence }) => ({ sequence, payload })), [
          { sequence: 1, payload: { type: "A" } },
          { sequence: 2, payload: { type: "B", value: 42 } }
        ])
        assert.strictEqual(result.value.nextSequence, 3)
      }))

    it.effect("uncommitted_changes_are_rolled_back", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        const result = yield* store.withInstance(instance(type), () => Effect.succeed(Rollback({ value: "kept" })))
        assert.deepStrictEqual(result, { _tag: "Done", value: "kept", committed: false })
        assert.strictEqual(yield* countEvents(type, "id-1"), 0)
        assert.isTrue(Option.isNone(yield* instanceRow(type, "id-1")), "a rolled back new instance leaves no row")
      }))

    it.effect("a failing unit of work writes nothing, not even the new instance row", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        const error = yield* store.withInstance(instance(type), () => Effect.fail("boom" as const)).pipe(
          Effect.flip
        )
        assert.strictEqual(error, "boom")
        assert.strictEqual(yield* countEvents(type, "id-1"), 0)
        assert.isTrue(Option.isNone(yield* instanceRow(type, "id-1")))
      }))

    it.effect("enqueue_effects_persists_to_outbox", () =>
      Effect.gen(function*() {
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, { effects: [sendEmail("test@example.com")] })
        const rows = yield* queueRows("outbox", type)
        assert.strictEqual(rows.length, 1)
        assert.deepStrictEqual(rows[0].payload, { type: "SendEmail", to: "test@example.com" })
        assert.strictEqual(rows[0].workflowId, "id-1")
        assert.strictEqual(rows[0].attempts, 0)
        assert.isNull(rows[0].processedAt)
      }))

    it.effect("sequence_increments_per_stream", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          events: [{ type: "A" }, { type: "B", value: 0 }, { type: "C" }]
        })
        const events = yield* store.fetchEvents(type, "id-1")
        assert.deepStrictEqual(events.map((e) => e.sequence), [1, 2, 3])
        assert.deepStrictEqual(typesOf(events), ["A", "B", "C"])
      }))

    it.effect("global_sequence_is_monotonic_across_streams", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "a" }, { events: [{ type: "A" }] })
        yield* commit({ workflowType: type, workflowId: "b" }, { events: [{ type: "B", value: 1 }] })
        yield* commit({ workflowType: type, workflowId: "a" }, { events: [{ type: "A" }] })
        const [a1, a2] = yield* store.fetchEvents(type, "a")
        const [b1] = yield* store.fetchEvents(type, "b")
        assert.isBelow(a1.globalSequence, b1.globalSequence)
        assert.isBelow(b1.globalSequence, a2.globalSequence)
      }))

    it.effect("different_workflow_types_are_isolated", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const typeA = uniqueType("store_a")
        const typeB = uniqueType("store_b")
        yield* commit({ workflowType: typeA, workflowId: "id-1" }, { events: [{ type: "A" }] })
        yield* commit({ workflowType: typeB, workflowId: "id-1" }, { events: [{ type: "B", value: 0 }] })
        assert.deepStrictEqual(typesOf(yield* store.fetchEvents(typeA, "id-1")), ["A"])
        assert.deepStrictEqual(typesOf(yield* store.fetchEvents(typeB, "id-1")), ["B"])
      }))

    it.effect("commit updates event_count and last_event_at with the Clock time", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* TestClock.adjust("1 minute")
        const createdAt = yield* Clock.currentTimeMillis
        yield* commit({ workflowType: type, workflowId: "id-1" }, { events: [{ type: "A" }, { type: "B" }] })
        yield* TestClock.adjust("5 seconds")
        const lastAt = yield* Clock.currentTimeMillis
        yield* commit({ workflowType: type, workflowId: "id-1" }, { events: [{ type: "C" }] })
        const summary = yield* store.fetchInstance(type, "id-1")
        assert.isTrue(Option.isSome(summary))
        if (Option.isNone(summary)) return
        assert.strictEqual(summary.value.eventCount, 3)
        assert.strictEqual(summary.value.createdAt.getTime(), createdAt)
        assert.deepStrictEqual(Option.map(summary.value.lastEventAt, (d) => d.getTime()), Option.some(lastAt))
        assert.isTrue(Option.isNone(summary.value.completedAt))
        const events = yield* store.fetchEvents(type, "id-1")
        assert.deepStrictEqual(events.map((e) => e.createdAt.getTime()), [createdAt, createdAt, lastAt])
      }))

    it.effect("a completing unit of work marks the instance completed", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        const now = yield* Clock.currentTimeMillis
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          events: [{ type: "Stopped" }],
          completed: true
        })
        const row = yield* instanceRow(type, "id-1")
        assert.deepStrictEqual(Option.map(row, (r) => r.completedAt), Option.some(now))
        const ran = yield* Ref.make(false)
        const result = yield* store.withInstance(
          instance(type),
          () => Effect.as(Ref.set(ran, true), Commit({ writes: writes({ events: [{ type: "Late" }] }), value: 1 }))
        )
        assert.deepStrictEqual(result, { _tag: "Completed" })
        assert.isFalse(yield* Ref.get(ran), "the body does not run on a completed instance")
        assert.strictEqual(yield* countEvents(type, "id-1"), 1)
      }))

    it.effect("completing an instance does not cancel its pending effects and timers", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          events: [{ type: "Stopped" }],
          effects: [sendEmail("after-the-end")],
          timers: [timer(0, timeout("after-the-end"), "k")],
          completed: true
        })
        const pending = yield* store.fetchPending(type, "id-1")
        assert.deepStrictEqual(pending.map((p) => p.kind).sort(), ["effect", "timer"])
        assert.strictEqual((yield* claim("effect", type, "worker-1")).length, 1)
        assert.strictEqual((yield* claim("timer", type, "worker-1")).length, 1)
      }))

    it.effect("begin_returns_completed_for_completed_workflow", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const workflow = makeTestWorkflow(uniqueType())
        const service = yield* makeService([makeTestHandler(workflow)])
        yield* service.execute(workflow, new Stop({ id: "completed-begin-test" }))
        const ran = yield* Ref.make(false)
        const result = yield* store.withInstance(
          instance(workflow.type, "completed-begin-test"),
          () => Effect.as(Ref.set(ran, true), Rollback({ value: undefined }))
        )
        assert.deepStrictEqual(result, { _tag: "Completed" })
        assert.isFalse(yield* Ref.get(ran))
      }))

    it.effect("record_input_observation_persists", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        const now = yield* Clock.currentTimeMillis
        yield* commit({ workflowType: type, workflowId: "id-1" }, {
          events: [{ type: "A" }],
          observation: Option.some({
            workflowType: type,
            workflowId: "id-1",
            inputType: "TestInput",
            payload: { type: "TestInput", value: 42 },
            outcome: WorkflowStore.ObservationOutcome.Accepted()
          })
        })
        const observations = yield* store.fetchObservations(type, "id-1")
        assert.strictEqual(observations.length, 1)
        assert.strictEqual(observations[0].inputType, "TestInput")
        assert.deepStrictEqual(observations[0].payload, { type: "TestInput", value: 42 })
        assert.deepStrictEqual(observations[0].outcome, WorkflowStore.ObservationOutcome.Accepted())
        assert.strictEqual(observations[0].observedAt.getTime(), now)
      }))

    it.effect("an observation in a rolled back unit of work is not stored", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        yield* store.withInstance(instance(type), () => Effect.succeed(Rollback({ value: undefined })))
        assert.deepStrictEqual(yield* store.fetchObservations(type, "id-1"), [])
      }))

    it.effect("recordObservation stores rejected and already-completed outcomes outside a unit of work", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        const base = { workflowType: type, workflowId: "id-1", inputType: "Ping", payload: { type: "Ping" } }
        yield* store.recordObservation({
          ...base,
          outcome: WorkflowStore.ObservationOutcome.Rejected({ rejection: { code: "nope" } })
        })
        yield* store.recordObservation({ ...base, outcome: WorkflowStore.ObservationOutcome.AlreadyCompleted() })
        const observations = yield* store.fetchObservations(type, "id-1")
        assert.deepStrictEqual(observations.map((o) => o.outcome), [
          WorkflowStore.ObservationOutcome.Rejected({ rejection: { code: "nope" } }),
          WorkflowStore.ObservationOutcome.AlreadyCompleted()
        ])
        assert.isTrue(Option.isNone(yield* instanceRow(type, "id-1")), "no instance row is created")
      }))
  })

  describe("stored JSON", () => {
    it.effect("payloads that are JSON strings (or look like JSON) are read back unchanged", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        const strings = ["plain", "42", "{\"a\":1}", "[1,2]", "true", "null"]
        const baseline = yield* maxGlobalSequence
        yield* commit({ workflowType: type, workflowId: "json-1" }, {
          events: strings,
          effects: strings,
          timers: strings.map((s) => timer(0, s)),
          observation: Option.some({
            workflowType: type,
            workflowId: "json-1",
            inputType: "Text",
            payload: "42",
            outcome: WorkflowStore.ObservationOutcome.Accepted()
          })
        })
        assert.deepStrictEqual((yield* store.fetchEvents(type, "json-1")).map((e) => e.payload), strings)
        assert.deepStrictEqual((yield* store.fetchEventsSince(baseline, 100)).map((e) => e.payload), strings)
        const locked = yield* store.withInstance(
          instance(type, "json-1"),
          (locked) => Effect.succeed(Rollback({ value: locked.events.map((e) => e.payload) }))
        )
        assert.deepStrictEqual(locked, { _tag: "Done", value: strings, committed: false })
        assert.deepStrictEqual(
          (yield* claim("effect", type, "worker-1", { limit: 10 })).map((e) => e.payload),
          strings
        )
        assert.deepStrictEqual(
          (yield* claim("timer", type, "worker-1", { limit: 10 })).map((e) => e.payload),
          strings
        )
        const [observation] = yield* store.fetchObservations(type, "json-1")
        assert.strictEqual(observation.payload, "42")
      }))

    it.effect("a rejection that is a JSON string is read back unchanged", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        for (const rejection of ["validation failed", "42"]) {
          yield* store.recordObservation({
            workflowType: type,
            workflowId: "json-2",
            inputType: "Ping",
            payload: { type: "Ping" },
            outcome: WorkflowStore.ObservationOutcome.Rejected({ rejection })
          })
        }
        const observations = yield* store.fetchObservations(type, "json-2")
        assert.deepStrictEqual(observations.map((o) => o.outcome), [
          WorkflowStore.ObservationOutcome.Rejected({ rejection: "validation failed" }),
          WorkflowStore.ObservationOutcome.Rejected({ rejection: "42" })
        ])
      }))
  })
}
