/**
 * The `WorkflowStore` contract (spec §7.1, ironflow's `tests/postgres/store.rs`)
 * run against `PgWorkflowStore` over a given database: real PostgreSQL or the
 * embedded PGlite.
 *
 * One database serves the whole suite, so every test works on workflow types
 * of its own (`uniqueType`). Time is the TestClock: it only moves with
 * `TestClock.adjust`, which drives leases, backoff and timer due times.
 *
 * Deliberate differences from ironflow, tested as documented here:
 * - a dead letter is a row with `dead_lettered_at` set by
 *   `fail(..., { _tag: "DeadLetter" })`, not "attempts >= max_attempts";
 * - `retryDeadLetter` resets only a row that really is dead;
 * - every timestamp comes from Effect's `Clock`, not the database's `now()`.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import {
  Array as Arr,
  Clock,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Option,
  Ref,
  TestClock,
  TestServices
} from "effect"
import { Migrations, PgWorkflowStore, Workflow, WorkflowError, WorkflowService, WorkflowStore } from "ironflow"
import { assertBackend } from "../support/database.js"
import {
  Close,
  Increment,
  initialTestState,
  makeTestHandler,
  makeTestWorkflow,
  makeUniqueKeyWorkflow,
  Open,
  Ping,
  Stop
} from "../support/fixtures.js"
import {
  commit,
  countEvents,
  fullReplay,
  insertRawEvents,
  instanceRow,
  liveSleep,
  makeService,
  queueRows,
  timer,
  typesOf,
  uniqueType,
  writes
} from "../support/helpers.js"

/** ironflow's `TEST_LOCK_DURATION`. */
const LEASE = Duration.seconds(30)

const { Commit, Rollback } = WorkflowStore.UnitOfWork

export interface SuiteOptions {
  /**
   * Whether two transactions can be open at once. False for PGlite, a single
   * session where one transaction waits for the other to end.
   */
  readonly concurrentTransactions: boolean
}

const instance = (workflowType: string, workflowId = "id-1", uniqueKey?: string) => ({
  workflowType,
  workflowId,
  uniqueKey: Option.fromNullable(uniqueKey)
})

const sendEmail = (to: string) => ({ type: "SendEmail", to })
const timeout = (orderId: string) => ({ type: "Timeout", order_id: orderId })

const claim = (
  kind: WorkflowStore.QueueKind,
  workflowType: string,
  workerId: string,
  options: { readonly limit?: number; readonly lease?: Duration.DurationInput } = {}
) =>
  Effect.flatMap(WorkflowStore.WorkflowStore, (store) =>
    store.claim({
      kind,
      workerId,
      workflowTypes: [workflowType],
      limit: options.limit ?? 1,
      lease: Duration.decode(options.lease ?? LEASE)
    }))

/** Claims the single runnable row of a type, failing the test if there is none. */
const claimOne = (
  kind: WorkflowStore.QueueKind,
  workflowType: string,
  workerId: string,
  lease?: Duration.DurationInput
) =>
  Effect.flatMap(claim(kind, workflowType, workerId, lease === undefined ? {} : { lease }), (claimed) => {
    assert.strictEqual(claimed.length, 1, `expected one claimable ${kind} of ${workflowType}`)
    return Effect.succeed(claimed[0])
  })

/** A dead-lettered effect: enqueued, claimed and failed for good. */
const deadEffect = (workflowType: string, workflowId: string, error = "boom") =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore.WorkflowStore
    yield* commit({ workflowType, workflowId }, { effects: [sendEmail(`${workflowId}@example.com`)] })
    const claimed = yield* claimOne("effect", workflowType, "worker-1")
    assert.isTrue(yield* store.fail("effect", "worker-1", claimed.id, error, { _tag: "DeadLetter" }))
    return claimed.id
  })

const maxGlobalSequence = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ max: unknown }>`SELECT coalesce(max(global_sequence), 0) AS max FROM ironflow.events`
  return Number(rows[0].max)
})

export const suite = (
  label: string,
  database: Layer.Layer<SqlClient.SqlClient, unknown>,
  options: SuiteOptions
) =>
  it.layer(PgWorkflowStore.layer.pipe(Layer.provideMerge(database)), { timeout: 60_000 })(
    `WorkflowStore contract (${label})`,
    (it) => {
      it.effect(`runs on ${label}: the database says so, and another connection sees the writes`, () =>
        assertBackend(label))

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
  )
