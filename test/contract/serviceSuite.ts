/**
 * The `WorkflowService` contract (spec §7.2, ironflow's `tests/postgres/service.rs`)
 * plus the rules for bad input, run over `PgWorkflowStore` on a given
 * database. Each test defines its own workflow types and builds its own
 * service over the suite's store (`makeService`).
 *
 * ironflow's builder tests `builder_creates_runtime` and
 * `builder_with_custom_config` belong to the runtime builder and are not part
 * of this suite; duplicate registration is tested on `WorkflowRegistry.make`.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Layer, Option, Schema, TestClock } from "effect"
import {
  Decision,
  ExecuteOutcome,
  PgWorkflowStore,
  Workflow,
  WorkflowError,
  WorkflowRegistry,
  WorkflowStore
} from "ironflow"
import { assertBackend } from "../support/database.js"
import {
  EffectlessIncrement,
  ForceReject,
  Increment,
  initialTestState,
  makeEffectlessWorkflow,
  makeTestHandler,
  makeTestWorkflow,
  makeTimerTestHandler,
  makeTimerTestWorkflow,
  Ping,
  Stop,
  TimerComplete,
  TimerStart
} from "../support/fixtures.js"
import {
  commit,
  countEvents,
  insertRawEvents,
  instanceRow,
  makeService,
  queueRows,
  typesOf,
  uniqueType
} from "../support/helpers.js"

/** A `TestWorkflow` of a fresh type and a service that knows only it. */
const setup = (config: { readonly recordInputObservations?: boolean } = {}) =>
  Effect.gen(function*() {
    const workflow = makeTestWorkflow(uniqueType())
    const service = yield* makeService([makeTestHandler(workflow)], config)
    return { workflow, service }
  })

const { Accepted, AlreadyCompleted, Rejected } = ExecuteOutcome

export const suite = (label: string, database: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  it.layer(PgWorkflowStore.layer.pipe(Layer.provideMerge(database)), { timeout: 60_000 })(
    `WorkflowService contract (${label})`,
    (it) => {
      it.effect(`runs on ${label}: the database says so, and another connection sees the writes`, () =>
        assertBackend(label))

      describe("registration", () => {
        it.effect("builder_rejects_duplicate_registration", () =>
          Effect.gen(function*() {
            const workflow = makeTestWorkflow(uniqueType())
            const handler = makeTestHandler(workflow)
            const error = yield* WorkflowRegistry.make([handler, handler]).pipe(Effect.flip)
            assert.instanceOf(error, WorkflowError.DuplicateWorkflowType)
            assert.strictEqual(error.workflowType, workflow.type)
            assert.strictEqual(error.message, `duplicate workflow type registration: ${workflow.type}`)
          }))

        it.effect("two different workflows under one type name are a DuplicateWorkflowType", () =>
          Effect.gen(function*() {
            const type = uniqueType()
            const other = uniqueType()
            const error = yield* WorkflowRegistry.make([
              makeTestHandler(makeTestWorkflow(other)),
              makeTestHandler(makeTestWorkflow(type)),
              makeEffectlessWorkflow(type),
              makeEffectlessWorkflow(other)
            ]).pipe(Effect.flip)
            assert.instanceOf(error, WorkflowError.DuplicateWorkflowType)
            assert.strictEqual(error.workflowType, type, "the first duplicate is reported")
          }))

        it.effect("builder_register_without_effects", () =>
          Effect.gen(function*() {
            const workflow = makeEffectlessWorkflow(uniqueType("effectless"))
            const service = yield* makeService([workflow])
            const outcome = yield* service.execute(workflow, new EffectlessIncrement({ id: "effectless-1" }))
            assert.deepStrictEqual(outcome, Accepted({ eventsAppended: 1 }))
            const events = yield* service.fetchWorkflowEvents(workflow.type, "effectless-1")
            assert.deepStrictEqual(events.map((e) => e.payload), [{ type: "Incremented", value: 1 }])
            assert.deepStrictEqual(yield* queueRows("outbox", workflow.type), [])
          }))

        it.effect("a workflow registered with Workflow.withoutEffects executes", () =>
          Effect.gen(function*() {
            const workflow = makeEffectlessWorkflow(uniqueType("effectless"))
            const service = yield* makeService([Workflow.withoutEffects(workflow)])
            yield* service.execute(workflow, new EffectlessIncrement({ id: "e-1" }))
            yield* service.execute(workflow, new EffectlessIncrement({ id: "e-1" }))
            assert.deepStrictEqual(yield* service.fetchLatestState(workflow, "e-1"), { value: 2 })
          }))

        it.effect("register_populates_both_dispatch_paths", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            assert.deepStrictEqual(
              yield* service.execute(workflow, new Ping({ id: "both-1" })),
              Accepted({ eventsAppended: 1 })
            )
            assert.deepStrictEqual(
              yield* service.executeDynamic(workflow.type, { type: "Ping", id: "both-2" }),
              Accepted({ eventsAppended: 1 })
            )
          }))

        it.effect("the service configuration comes from WorkflowServiceConfig", () =>
          Effect.gen(function*() {
            const workflow = makeTestWorkflow(uniqueType())
            const defaults = yield* makeService([makeTestHandler(workflow)])
            assert.deepInclude(defaults.config, { recordInputObservations: false, snapshotEvery: 100 })
            const observing = yield* makeService([makeTestHandler(workflow)], { recordInputObservations: true })
            assert.isTrue(observing.config.recordInputObservations)
          }))
      })

      describe("execute", () => {
        it.effect("execute_dynamic_unknown_workflow_fails", () =>
          Effect.gen(function*() {
            const { service } = yield* setup()
            const unknown = uniqueType("nonexistent")
            const error = yield* service.executeDynamic(unknown, { type: "Ping", id: "test-1" }).pipe(Effect.flip)
            assert.instanceOf(error, WorkflowError.UnknownWorkflowType)
            assert.strictEqual(error.workflowType, unknown)
          }))

        it.effect("execute_dynamic_routes_to_workflow", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            yield* service.executeDynamic(workflow.type, { type: "Ping", id: "test-1" })
            assert.strictEqual(yield* countEvents(workflow.type, "test-1"), 1)
            assert.deepStrictEqual(typesOf(yield* service.fetchWorkflowEvents(workflow.type, "test-1")), ["Pinged"])
          }))

        it.effect("execute_typed_routes_to_workflow", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            yield* service.execute(workflow, new Ping({ id: "test-1" }))
            assert.strictEqual(yield* countEvents(workflow.type, "test-1"), 1)
          }))

        it.effect("execute_on_new_workflow", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            yield* service.execute(workflow, new Increment({ id: "test-1", withEffect: false }))
            assert.deepStrictEqual(typesOf(yield* service.fetchWorkflowEvents(workflow.type, "test-1")), [
              "Incremented"
            ])
            assert.deepStrictEqual(yield* queueRows("outbox", workflow.type), [])
          }))

        it.effect("execute_replays_existing_events", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            yield* commit({ workflowType: workflow.type, workflowId: "test-1" }, {
              events: [{ type: "Incremented", value: 1 }, { type: "Incremented", value: 2 }]
            })
            yield* service.execute(workflow, new Increment({ id: "test-1", withEffect: true }))
            const events = yield* service.fetchWorkflowEvents(workflow.type, "test-1")
            assert.deepStrictEqual(typesOf(events), ["Incremented", "Incremented", "Incremented"])
            assert.deepStrictEqual(events[2].payload, { type: "Incremented", value: 3 })
            const effects = yield* queueRows("outbox", workflow.type)
            assert.strictEqual(effects.length, 1)
            assert.strictEqual((effects[0].payload as { message: string }).message, "Counter is now 3")
          }))

        it.effect("execute_enqueues_effects", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            yield* service.execute(workflow, new Increment({ id: "test-1", withEffect: true }))
            const effects = yield* queueRows("outbox", workflow.type)
            assert.strictEqual(effects.length, 1)
            assert.deepStrictEqual(effects[0].payload, { type: "Notify", message: "Counter is now 1" })
            assert.strictEqual(effects[0].workflowId, "test-1")
          }))

        it.effect("execute_detects_terminal_state", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            yield* service.execute(workflow, new Ping({ id: "test-1" }))
            const now = yield* Clock.currentTimeMillis
            yield* service.execute(workflow, new Stop({ id: "test-1" }))
            assert.deepStrictEqual(typesOf(yield* service.fetchWorkflowEvents(workflow.type, "test-1")), [
              "Pinged",
              "Stopped"
            ])
            assert.deepStrictEqual(
              Option.map(yield* instanceRow(workflow.type, "test-1"), (r) => r.completedAt),
              Option.some(now)
            )
          }))

        it.effect("execute_skips_completed_workflow", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            yield* service.execute(workflow, new Ping({ id: "test-1" }))
            yield* service.execute(workflow, new Stop({ id: "test-1" }))
            const before = yield* countEvents(workflow.type, "test-1")
            yield* service.execute(workflow, new Increment({ id: "test-1", withEffect: true }))
            assert.strictEqual(yield* countEvents(workflow.type, "test-1"), before)
            assert.deepStrictEqual(yield* queueRows("outbox", workflow.type), [])
          }))

        it.effect("execute_returns_accepted_with_event_count", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            const outcome = yield* service.execute(workflow, new Ping({ id: "count-1" }))
            assert.deepStrictEqual(outcome, Accepted({ eventsAppended: 1 }))
            assert.isTrue(ExecuteOutcome.isAccepted(outcome))
          }))

        it.effect("execute_returns_rejected_with_typed_reason", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            const outcome = yield* service.execute(
              workflow,
              new ForceReject({ id: "reject-1", reason: "validation failed" })
            )
            assert.deepStrictEqual(outcome, Rejected("validation failed"))
            if (outcome._tag === "Rejected") {
              const reason: string = outcome.reason
              assert.strictEqual(reason, "validation failed")
            }
          }))

        it.effect("rejected_input_does_not_append_events", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            yield* service.execute(workflow, new Ping({ id: "reject-2" }))
            yield* service.execute(workflow, new ForceReject({ id: "reject-2", reason: "no" }))
            assert.deepStrictEqual(typesOf(yield* service.fetchWorkflowEvents(workflow.type, "reject-2")), ["Pinged"])
            assert.deepStrictEqual(
              Option.map(yield* instanceRow(workflow.type, "reject-2"), (r) => r.eventCount),
              Option.some(1)
            )
          }))

        it.effect("rejected_bootstrap_rolls_back_instance_row", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            yield* service.execute(workflow, new ForceReject({ id: "reject-3", reason: "no" }))
            assert.isTrue(Option.isNone(yield* instanceRow(workflow.type, "reject-3")))
            assert.deepStrictEqual(yield* service.listWorkflows(workflow.type), [])
          }))

        it.effect("execute_returns_already_completed_for_terminal_workflow", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            yield* service.execute(workflow, new Stop({ id: "done-1" }))
            assert.deepStrictEqual(yield* service.execute(workflow, new Ping({ id: "done-1" })), AlreadyCompleted)
            assert.deepStrictEqual(
              yield* service.execute(workflow, new ForceReject({ id: "done-1", reason: "decide is not called" })),
              AlreadyCompleted
            )
            assert.deepStrictEqual(
              yield* service.executeDynamic(workflow.type, { type: "Ping", id: "done-1" }),
              AlreadyCompleted
            )
          }))

        it.effect("execute_dynamic_returns_json_rejection", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            const outcome = yield* service.executeDynamic(workflow.type, {
              type: "ForceReject",
              id: "dyn-1",
              reason: "nope"
            })
            assert.deepStrictEqual(outcome, Rejected("nope"))
          }))

        it.effect("decide receives the Clock time as now", () =>
          Effect.gen(function*() {
            const Input = Schema.TaggedStruct("Stamp", { id: Schema.String })
            const Event = Schema.TaggedStruct("Stamped", { at: Schema.Number })
            const workflow = Workflow.make({
              type: uniqueType("clock"),
              state: Schema.Struct({}),
              input: Input,
              event: Event,
              initialState: {},
              workflowId: { field: "id" },
              evolve: (state) => state,
              decide: (now) => Decision.accept(Event.make({ at: now.epochMillis }))
            })
            const service = yield* makeService([workflow])
            yield* TestClock.adjust("1 day")
            const now = yield* Clock.currentTimeMillis
            yield* service.execute(workflow, Input.make({ id: "stamp-1" }))
            const [event] = yield* service.fetchWorkflowEvents(workflow.type, "stamp-1")
            assert.deepStrictEqual(event.payload, { type: "Stamped", at: now })
            assert.strictEqual(event.createdAt.getTime(), now)
          }))

        it.effect("execute passes the typed input to decide as is (no JSON round-trip)", () =>
          Effect.gen(function*() {
            const seen: Array<unknown> = []
            const Input = Schema.TaggedStruct("Go", { id: Schema.String })
            const Event = Schema.TaggedStruct("Went", {})
            const workflow = Workflow.make({
              type: uniqueType("typed"),
              state: Schema.Struct({}),
              input: Input,
              event: Event,
              initialState: {},
              workflowId: { field: "id" },
              evolve: (state) => state,
              decide: (_now, _state, input) => {
                seen.push(input)
                return Decision.accept(Event.make({}))
              }
            })
            const service = yield* makeService([workflow])
            const input = Input.make({ id: "same-object" })
            yield* service.execute(workflow, input)
            assert.strictEqual(seen[0], input)
          }))

        it.effect("an effect that does not encode with its Schema is a SerializationError and nothing is written", () =>
          Effect.gen(function*() {
            const Input = Schema.TaggedStruct("Charge", { id: Schema.String, amount: Schema.Number })
            const Event = Schema.TaggedStruct("Charged", { amount: Schema.Number })
            const Payment = Schema.TaggedStruct("Pay", { amount: Schema.Number.pipe(Schema.positive()) })
            const workflow = Workflow.make({
              type: uniqueType("encode"),
              state: Schema.Struct({}),
              input: Input,
              event: Event,
              effect: Payment,
              initialState: {},
              workflowId: { field: "id" },
              evolve: (state) => state,
              decide: (_now, _state, input) =>
                Decision.withEffect(
                  Decision.accept(Event.make({ amount: input.amount })),
                  Payment.make({ amount: input.amount }, true)
                )
            })
            const service = yield* makeService([workflow.handler(() => Effect.succeedNone)], {
              recordInputObservations: true
            })
            const error = yield* service.execute(workflow, Input.make({ id: "neg", amount: -5 })).pipe(Effect.flip)
            assert.instanceOf(error, WorkflowError.SerializationError)
            assert.deepInclude(error, { workflowType: workflow.type, subject: "effect", direction: "encode" })
            assert.strictEqual(yield* countEvents(workflow.type, "neg"), 0)
            assert.isTrue(Option.isNone(yield* instanceRow(workflow.type, "neg")))
            assert.deepStrictEqual(yield* queueRows("outbox", workflow.type), [])
            assert.deepStrictEqual(yield* service.fetchObservations(workflow.type, "neg"), [])
          }))

        it.effect("timer_scheduling_and_cancellation", () =>
          Effect.gen(function*() {
            const workflow = makeTimerTestWorkflow(uniqueType("timer_test"))
            const service = yield* makeService([makeTimerTestHandler(workflow)])
            const now = yield* Clock.currentTimeMillis
            yield* service.execute(workflow, new TimerStart({ id: "t-1", timeoutSecs: 60, timerKey: "timeout" }))
            const [pending] = yield* queueRows("timers", workflow.type)
            assert.deepStrictEqual(pending.payload, { type: "Timeout", id: "t-1" })
            assert.strictEqual(pending.key, "timeout")
            assert.strictEqual(pending.fireAt, now + 60_000)
            assert.deepStrictEqual((yield* queueRows("outbox", workflow.type)).map((r) => r.payload), [{
              type: "Process"
            }])

            assert.deepStrictEqual(
              yield* service.execute(workflow, new TimerComplete({ id: "t-1", cancelTimerKey: "timeout" })),
              Accepted({ eventsAppended: 2 })
            )
            const events = yield* service.fetchWorkflowEvents(workflow.type, "t-1")
            assert.deepStrictEqual(events.map((e) => e.payload), [
              { type: "Started" },
              { type: "Completed" },
              { type: "TimerCancelled", key: "timeout" }
            ])
            const [cancelled] = yield* queueRows("timers", workflow.type)
            assert.isNotNull(cancelled.processedAt, "no pending timer with that key is left")
          }))
      })

      describe("observations", () => {
        it.effect("execute_records_input_observation_when_enabled", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup({ recordInputObservations: true })
            yield* service.execute(workflow, new Ping({ id: "test-1" }))
            const observations = yield* service.fetchObservations(workflow.type, "test-1")
            assert.strictEqual(observations.length, 1)
            assert.strictEqual(observations[0].inputType, "Ping")
            assert.deepStrictEqual(observations[0].payload, { type: "Ping", id: "test-1" })
            assert.deepStrictEqual(observations[0].outcome, WorkflowStore.ObservationOutcome.Accepted())
          }))

        it.effect("the input type of an untagged input is the Schema identifier, else \"{type}.Input\"", () =>
          Effect.gen(function*() {
            const Event = Schema.TaggedStruct("Seen", {})
            const define = (type: string, input: Schema.Schema<{ readonly id: string }>) =>
              Workflow.make({
                type,
                state: Schema.Struct({}),
                input,
                event: Event,
                initialState: {},
                workflowId: (i) => i.id,
                evolve: (state) => state,
                decide: () => Decision.accept(Event.make({}))
              })
            const anonymous = define(uniqueType("plain"), Schema.Struct({ id: Schema.String }))
            const named = define(
              uniqueType("named"),
              Schema.Struct({ id: Schema.String }).annotations({ identifier: "Command" })
            )
            const service = yield* makeService([anonymous, named], { recordInputObservations: true })
            yield* service.execute(anonymous, { id: "x" })
            yield* service.execute(named, { id: "x" })
            const [a] = yield* service.fetchObservations(anonymous.type, "x")
            const [n] = yield* service.fetchObservations(named.type, "x")
            assert.strictEqual(a.inputType, `${anonymous.type}.Input`)
            assert.deepStrictEqual(a.payload, { id: "x" })
            assert.strictEqual(n.inputType, "Command")
          }))

        it.effect("no observation is recorded when observations are disabled", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            yield* service.execute(workflow, new Ping({ id: "test-1" }))
            assert.deepStrictEqual(yield* service.fetchObservations(workflow.type, "test-1"), [])
          }))

        it.effect("rejection_persisted_when_observations_enabled", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup({ recordInputObservations: true })
            yield* service.execute(workflow, new ForceReject({ id: "obs-1", reason: "validation failed" }))
            const observations = yield* service.fetchObservations(workflow.type, "obs-1")
            assert.strictEqual(observations.length, 1)
            assert.strictEqual(observations[0].inputType, "ForceReject")
            assert.deepStrictEqual(observations[0].payload, {
              type: "ForceReject",
              id: "obs-1",
              reason: "validation failed"
            })
            assert.deepStrictEqual(
              observations[0].outcome,
              WorkflowStore.ObservationOutcome.Rejected({ rejection: "validation failed" })
            )
            assert.isTrue(
              Option.isNone(yield* instanceRow(workflow.type, "obs-1")),
              "the rejected bootstrap leaves no instance"
            )
          }))

        it.effect("rejection_not_persisted_when_observations_disabled", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            yield* service.execute(workflow, new ForceReject({ id: "obs-2", reason: "validation failed" }))
            assert.deepStrictEqual(yield* service.fetchObservations(workflow.type, "obs-2"), [])
          }))

        it.effect("already_completed_persisted_when_observations_enabled", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup({ recordInputObservations: true })
            yield* service.execute(workflow, new Stop({ id: "obs-3" }))
            yield* service.execute(workflow, new Ping({ id: "obs-3" }))
            const observations = yield* service.fetchObservations(workflow.type, "obs-3")
            assert.deepStrictEqual(observations.map((o) => [o.inputType, o.outcome]), [
              ["Stop", WorkflowStore.ObservationOutcome.Accepted()],
              ["Ping", WorkflowStore.ObservationOutcome.AlreadyCompleted()]
            ])
          }))
      })

      describe("queries", () => {
        it.effect("list_workflows_filters_by_type", () =>
          Effect.gen(function*() {
            const workflow = makeTestWorkflow(uniqueType())
            const effectless = makeEffectlessWorkflow(uniqueType("effectless"))
            const service = yield* makeService([makeTestHandler(workflow), effectless])
            yield* service.execute(workflow, new Ping({ id: "test-1" }))
            yield* service.execute(workflow, new Ping({ id: "test-2" }))
            yield* service.execute(effectless, new EffectlessIncrement({ id: "effectless-1" }))

            const mine = (yield* service.listWorkflows(undefined, 100_000, 0)).filter((w) =>
              w.workflowType === workflow.type || w.workflowType === effectless.type
            )
            assert.strictEqual(mine.length, 3)
            const testOnly = yield* service.listWorkflows(workflow.type, 10, 0)
            assert.strictEqual(testOnly.length, 2)
            assert.isTrue(testOnly.every((w) => w.workflowType === workflow.type))
            assert.deepStrictEqual(testOnly.map((w) => w.workflowId).sort(), ["test-1", "test-2"])
          }))

        it.effect("list_workflows orders by last activity, most recent first, with limit and offset", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            yield* service.execute(workflow, new Ping({ id: "a" }))
            yield* TestClock.adjust("1 second")
            yield* service.execute(workflow, new Ping({ id: "b" }))
            yield* TestClock.adjust("1 second")
            yield* service.execute(workflow, new Ping({ id: "c" }))
            yield* TestClock.adjust("1 second")
            const touched = yield* Clock.currentTimeMillis
            yield* service.execute(workflow, new Ping({ id: "a" }))
            // An instance without events (no last activity) comes last, however recent its creation.
            const sql = yield* SqlClient.SqlClient
            yield* TestClock.adjust("1 second")
            const createdAt = new Date(yield* Clock.currentTimeMillis)
            yield* sql`
              INSERT INTO ironflow.workflow_instances (workflow_type, workflow_id, created_at)
              VALUES (${workflow.type}, 'idle', ${createdAt})`
            const ids = (limit?: number, offset?: number) =>
              Effect.map(service.listWorkflows(workflow.type, limit, offset), (list) => list.map((w) => w.workflowId))
            assert.deepStrictEqual(yield* ids(), ["a", "c", "b", "idle"])
            assert.deepStrictEqual(yield* ids(2, 0), ["a", "c"])
            assert.deepStrictEqual(yield* ids(2, 1), ["c", "b"])
            const [a] = yield* service.listWorkflows(workflow.type, 1, 0)
            assert.strictEqual(a.eventCount, 2)
            assert.deepStrictEqual(Option.map(a.lastEventAt, (d) => d.getTime()), Option.some(touched))
            assert.isTrue(Option.isNone(a.completedAt))
          }))

        it.effect("fetch_workflow_events_returns_history", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            yield* service.execute(workflow, new Increment({ id: "history-1", withEffect: false }))
            yield* service.execute(workflow, new Increment({ id: "history-1", withEffect: false }))
            const events = yield* service.fetchWorkflowEvents(workflow.type, "history-1")
            assert.deepStrictEqual(events.map((e) => e.sequence), [1, 2])
            assert.deepStrictEqual(typesOf(events), ["Incremented", "Incremented"])
            assert.isTrue(events.every((e) => e.workflowType === workflow.type && e.workflowId === "history-1"))
            assert.isBelow(events[0].globalSequence, events[1].globalSequence)
          }))

        it.effect("fetch_workflow_events is empty for an unknown instance and does not check registration", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            assert.deepStrictEqual(yield* service.fetchWorkflowEvents(workflow.type, "never-seen"), [])
            assert.deepStrictEqual(yield* service.fetchWorkflowEvents(uniqueType("unregistered"), "x"), [])
          }))

        it.effect("events are stored in the tagged JSON shape {\"type\": \"Variant\", ...}", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup({ recordInputObservations: true })
            yield* service.execute(workflow, new Increment({ id: "json-1", withEffect: true }))
            const [event] = yield* service.fetchWorkflowEvents(workflow.type, "json-1")
            assert.deepStrictEqual(event.payload, { type: "Incremented", value: 1 })
            const [effect] = yield* queueRows("outbox", workflow.type)
            assert.deepStrictEqual(effect.payload, { type: "Notify", message: "Counter is now 1" })
            const [observation] = yield* service.fetchObservations(workflow.type, "json-1")
            assert.deepStrictEqual(observation.payload, { type: "Increment", id: "json-1", withEffect: true })
          }))

        it.effect("events and effects whose stored JSON is a string round-trip unchanged", () =>
          Effect.gen(function*() {
            const Note = Schema.TaggedStruct("Note", { id: Schema.String, text: Schema.String })
            const workflow = Workflow.make({
              type: uniqueType("strings"),
              state: Schema.Array(Schema.String),
              input: Note,
              event: Schema.String,
              effect: Schema.String,
              initialState: [] as ReadonlyArray<string>,
              workflowId: { field: "id" },
              evolve: (state, event) => [...state, event],
              decide: (_now, _state, input) => Decision.withEffect(Decision.accept(input.text), input.text)
            })
            const service = yield* makeService([workflow.handler(() => Effect.succeedNone)])
            const texts = ["hello", "42", "{\"a\":1}", "null"]
            for (const text of texts) yield* service.execute(workflow, Note.make({ id: "s-1", text }))
            const events = yield* service.fetchWorkflowEvents(workflow.type, "s-1")
            assert.deepStrictEqual(events.map((e) => e.payload), texts)
            assert.deepStrictEqual(yield* service.fetchLatestState(workflow, "s-1"), texts)
            assert.deepStrictEqual((yield* queueRows("outbox", workflow.type)).map((e) => e.payload), texts)
          }))

        it.effect("fetch_latest_state_returns_json", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            yield* service.execute(workflow, new Increment({ id: "state-1", withEffect: false }))
            yield* service.execute(workflow, new Increment({ id: "state-1", withEffect: false }))
            const json = yield* service.fetchLatestStateDynamic(workflow.type, "state-1")
            assert.strictEqual((json as { counter: number }).counter, 2)
            assert.deepStrictEqual(json, { status: "idle", value: null, counter: 2 })
          }))

        it.effect("fetch_latest_state returns the typed state", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            yield* service.execute(workflow, new Increment({ id: "state-2", withEffect: false }))
            yield* service.executeDynamic(workflow.type, { type: "Completed", id: "state-2", result: "done" })
            const state = yield* service.fetchLatestState(workflow, "state-2")
            assert.deepStrictEqual(state, { status: "completed", value: "done", counter: 1 })
          }))

        it.effect("fetch_latest_state of an unknown instance is the initial state", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            assert.deepStrictEqual(yield* service.fetchLatestState(workflow, "nobody"), initialTestState)
            assert.deepStrictEqual(yield* service.fetchLatestStateDynamic(workflow.type, "nobody"), initialTestState)
          }))
      })

      describe("bad input", () => {
        it.effect("an input that fails its Schema in executeDynamic is a SerializationError and writes nothing", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup({ recordInputObservations: true })
            const bad: ReadonlyArray<unknown> = [
              { type: "Increment", id: "bad-1" },
              { type: "Increment", id: "bad-1", withEffect: "yes" },
              { type: "NoSuchInput", id: "bad-1" },
              { id: "bad-1" },
              "bad-1",
              null
            ]
            for (const input of bad) {
              const error = yield* service.executeDynamic(workflow.type, input).pipe(Effect.flip)
              assert.instanceOf(error, WorkflowError.SerializationError, JSON.stringify(input))
              assert.deepInclude(error, { workflowType: workflow.type, subject: "input", direction: "decode" })
            }
            assert.isTrue(Option.isNone(yield* instanceRow(workflow.type, "bad-1")))
            assert.strictEqual(yield* countEvents(workflow.type, "bad-1"), 0)
            assert.deepStrictEqual(yield* service.fetchObservations(workflow.type, "bad-1"), [])
          }))

        it.effect("a stored event that no longer decodes is an EventDeserializationError naming type, id and 1-based sequence", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup({ recordInputObservations: true })
            yield* insertRawEvents(workflow.type, "corrupt-1", [
              { type: "Pinged" },
              { type: "Incremented", value: "not a number" },
              { type: "Pinged" }
            ])
            const failures = [
              yield* service.execute(workflow, new Increment({ id: "corrupt-1", withEffect: true })).pipe(Effect.flip),
              yield* service.executeDynamic(workflow.type, { type: "Ping", id: "corrupt-1" }).pipe(Effect.flip),
              yield* service.fetchLatestState(workflow, "corrupt-1").pipe(Effect.flip),
              yield* service.fetchLatestStateDynamic(workflow.type, "corrupt-1").pipe(Effect.flip)
            ]
            for (const error of failures) {
              assert.instanceOf(error, WorkflowError.EventDeserializationError)
              assert.deepInclude(error, { workflowType: workflow.type, workflowId: "corrupt-1", sequence: 2 })
              assert.include(
                error.message,
                `failed to deserialize event at sequence 2 for ${workflow.type}:corrupt-1`
              )
            }
            assert.strictEqual(yield* countEvents(workflow.type, "corrupt-1"), 3, "nothing appended")
            assert.isTrue(Option.isNone(yield* instanceRow(workflow.type, "corrupt-1")), "no instance row left")
            assert.deepStrictEqual(yield* queueRows("outbox", workflow.type), [], "no effect enqueued")
            assert.deepStrictEqual(yield* service.fetchObservations(workflow.type, "corrupt-1"), [], "nothing observed")
          }))

        it.effect("an unregistered workflow type is UnknownWorkflowType on every entry point", () =>
          Effect.gen(function*() {
            const { service } = yield* setup()
            const stranger = makeTestWorkflow(uniqueType("unregistered"))
            const failures = [
              yield* service.execute(stranger, new Ping({ id: "x" })).pipe(Effect.flip),
              yield* service.executeDynamic(stranger.type, { type: "Ping", id: "x" }).pipe(Effect.flip),
              yield* service.fetchLatestState(stranger, "x").pipe(Effect.flip),
              yield* service.fetchLatestStateDynamic(stranger.type, "x").pipe(Effect.flip)
            ]
            for (const error of failures) {
              assert.instanceOf(error, WorkflowError.UnknownWorkflowType)
              assert.strictEqual(error.workflowType, stranger.type)
              assert.strictEqual(error.message, `unknown workflow type: ${stranger.type}`)
            }
            assert.isTrue(Option.isNone(yield* instanceRow(stranger.type, "x")))
          }))

        it.effect("workflow ids with quotes, unicode, backslashes and SQL metacharacters work like any other id", () =>
          Effect.gen(function*() {
            const { service, workflow } = yield* setup()
            const ids = [
              "it's \"quoted\"",
              "ünïcødé-日本語-🚀",
              "back\\slash\\\\n",
              "'; DROP TABLE x; --",
              "100%_like_*?",
              "{a,b}",
              " spaced ",
              ""
            ]
            for (const id of ids) {
              yield* service.execute(workflow, new Increment({ id, withEffect: true }))
              yield* service.executeDynamic(workflow.type, { type: "Increment", id, withEffect: false })
            }
            for (const id of ids) {
              const events = yield* service.fetchWorkflowEvents(workflow.type, id)
              assert.deepStrictEqual(events.map((e) => e.sequence), [1, 2], id)
              assert.isTrue(events.every((e) => e.workflowId === id), id)
              assert.deepStrictEqual(
                yield* service.fetchLatestState(workflow, id),
                { ...initialTestState, counter: 2 },
                id
              )
              assert.deepStrictEqual(
                yield* service.fetchLatestStateDynamic(workflow.type, id),
                { ...initialTestState, counter: 2 },
                id
              )
            }
            const listed = yield* service.listWorkflows(workflow.type)
            assert.deepStrictEqual(listed.map((w) => w.workflowId).sort(), [...ids].sort())
            const effects = yield* queueRows("outbox", workflow.type)
            assert.deepStrictEqual(effects.map((e) => e.workflowId).sort(), [...ids].sort())
          }))
      })
    }
  )
