/** WorkflowStore contract: the event store, projections' reads and replay errors. */
import { assert, describe } from "@effect/vitest"
import { Effect, Option } from "effect"
import { WorkflowError, WorkflowStore } from "ironflow"
import { makeTestHandler, makeTestWorkflow, Ping } from "../../support/fixtures.js"
import {
  commit,
  countEvents,
  insertRawEvents,
  instanceRow,
  makeService,
  typesOf,
  uniqueType
} from "../../support/helpers.js"
import { maxGlobalSequence, type SuiteIt } from "./common.js"

export const eventsTests = (it: SuiteIt) => {
  describe("event store and projections", () => {
    it.effect("fetch_events_since_returns_events_after_sequence", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        const baseline = yield* maxGlobalSequence
        yield* commit({ workflowType: type, workflowId: "proj-1" }, {
          events: [{ type: "A" }, { type: "B", value: 1 }]
        })
        yield* commit({ workflowType: type, workflowId: "proj-2" }, { events: [{ type: "C" }] })

        const events = yield* store.fetchEventsSince(baseline, 100)
        assert.deepStrictEqual(events.map((e) => [e.workflowId, e.sequence]), [["proj-1", 1], ["proj-1", 2], [
          "proj-2",
          1
        ]])
        assert.isTrue(events.every((e) => e.workflowType === type))

        const after = yield* store.fetchEventsSince(events[0].globalSequence, 100)
        assert.strictEqual(after.length, 2, "the lower bound is exclusive")
        assert.isBelow(after[0].globalSequence, after[1].globalSequence)
        assert.deepStrictEqual(typesOf(after), ["B", "C"])
      }))

    it.effect("fetch_events_since_respects_limit", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("store")
        const baseline = yield* maxGlobalSequence
        yield* commit({ workflowType: type, workflowId: "limit-1" }, {
          events: [{ type: "A" }, { type: "B" }, { type: "C" }]
        })
        const events = yield* store.fetchEventsSince(baseline, 2)
        assert.deepStrictEqual(typesOf(events), ["A", "B"])
      }))

    it.effect("load_projection_position_returns_zero_for_new", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        assert.strictEqual(yield* store.loadProjectionPosition(uniqueType("new-projection")), 0)
      }))

    it.effect("store_and_load_projection_position", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const name = uniqueType("my-projection")
        assert.strictEqual(yield* store.loadProjectionPosition(name), 0)
        yield* store.storeProjectionPosition(name, 42)
        assert.strictEqual(yield* store.loadProjectionPosition(name), 42)
        yield* store.storeProjectionPosition(name, 100)
        assert.strictEqual(yield* store.loadProjectionPosition(name), 100)
      }))
  })

  describe("replay errors", () => {
    it.effect("event_deserialization_failure_includes_context", () =>
      Effect.gen(function*() {
        const workflow = makeTestWorkflow(uniqueType())
        yield* insertRawEvents(workflow.type, "corrupted-1", [
          { type: "Pinged" },
          { type: "InvalidEventType", garbage: true }
        ])
        const service = yield* makeService([makeTestHandler(workflow)])
        const error = yield* service.execute(workflow, new Ping({ id: "corrupted-1" })).pipe(Effect.flip)
        assert.instanceOf(error, WorkflowError.EventDeserializationError)
        assert.deepInclude(error, { workflowType: workflow.type, workflowId: "corrupted-1", sequence: 2 })
        assert.include(error.message, workflow.type)
        assert.include(error.message, "corrupted-1")
        assert.strictEqual(yield* countEvents(workflow.type, "corrupted-1"), 2, "nothing is appended")
        assert.isTrue(Option.isNone(yield* instanceRow(workflow.type, "corrupted-1")), "no instance row is left")
      }))
  })
}
