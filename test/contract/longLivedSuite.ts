/**
 * Long-lived workflows on one backend: snapshots (property test against a
 * full replay), event versioning with upcasters, retention, and dead-letter
 * propagation.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck, Layer, Option, Schema, TestClock } from "effect"
import {
  DeadLetters,
  Decision,
  PgWorkflowStore,
  Projection,
  Retention,
  RuntimeConfig,
  TestRuntime,
  Workflow,
  WorkflowRegistry,
  WorkflowRuntime,
  WorkflowService,
  WorkflowStore
} from "ironflow"
import { assertBackend } from "../support/database.js"
import { makeService, uniqueType } from "../support/helpers.js"

// A ledger whose state depends on the order of its events, so a wrong snapshot shows.
class Apply extends Schema.TaggedClass<Apply>()("Apply", {
  id: Schema.String,
  op: Schema.Literal("add", "mul", "neg"),
  n: Schema.Int
}) {}
class Applied
  extends Schema.TaggedClass<Applied>()("Applied", { op: Schema.Literal("add", "mul", "neg"), n: Schema.Int })
{}
const LedgerState = Schema.Struct({ value: Schema.Number, history: Schema.Array(Schema.String) })

const makeLedger = (type: string) =>
  Workflow.make({
    type,
    state: LedgerState,
    input: Apply,
    event: Applied,
    initialState: { value: 0, history: [] },
    workflowId: { field: "id" },
    // Snapshots hold the state as JSON, which has no -0: keep the state JSON-faithful.
    evolve: (state, e) => ({
      value: e.op === "add"
        ? state.value + e.n
        : e.op === "mul"
        ? (state.value * e.n) % 1_000_003 || 0
        : -state.value || 0,
      history: [...state.history, `${e.op}${e.n}`].slice(-5)
    }),
    decide: (_now, _s, input) => Decision.accept(new Applied({ op: input.op, n: input.n }))
  })

const fold = (ledger: ReturnType<typeof makeLedger>, payloads: ReadonlyArray<unknown>) =>
  payloads.reduce<typeof LedgerState.Type>(
    (state, payload) =>
      ledger.evolve(state, Schema.decodeUnknownSync(Applied)({ ...(payload as object), _tag: "Applied" })),
    ledger.initialState
  )

// Version 1 of an event stored a price in cents; version 2 stores an amount with a currency.
class Buy extends Schema.TaggedClass<Buy>()("Buy", { id: Schema.String, cents: Schema.Int }) {}
class BoughtV1 extends Schema.TaggedClass<BoughtV1>()("Bought", { cents: Schema.Int }) {}
class Bought extends Schema.TaggedClass<Bought>()("Bought", { amount: Schema.Number, currency: Schema.String }) {}
class Noted extends Schema.TaggedClass<Noted>()("Noted", { text: Schema.String }) {}

const purchasesV1 = (type: string) =>
  Workflow.make({
    type,
    state: Schema.Struct({ total: Schema.Number }),
    input: Buy,
    event: Schema.Union(BoughtV1, Noted),
    initialState: { total: 0 },
    workflowId: { field: "id" },
    evolve: (s, e) => (e._tag === "Bought" ? { total: s.total + e.cents / 100 } : s),
    decide: (_now, _s, input) =>
      Decision.acceptEvents([new BoughtV1({ cents: input.cents }), new Noted({ text: "v1" })])
  })

/** Version 2 of the same workflow type: reads version-1 events through an upcaster. */
const purchasesV2 = (type: string, withUpcaster = true) =>
  Workflow.make({
    type,
    state: Schema.Struct({ total: Schema.Number }),
    input: Buy,
    event: Schema.Union(Bought, Noted),
    initialState: { total: 0 },
    workflowId: { field: "id" },
    evolve: (s, e) => (e._tag === "Bought" ? { total: s.total + e.amount } : s),
    decide: (_now, _s, input) => Decision.accept(new Bought({ amount: input.cents / 100, currency: "EUR" })),
    eventVersion: 2,
    upcasters: withUpcaster
      ? {
        1: Workflow.upcastVariant(
          "Bought",
          Schema.transform(
            Schema.Struct({ type: Schema.Literal("Bought"), cents: Schema.Int }),
            Schema.Struct({ type: Schema.Literal("Bought"), amount: Schema.Number, currency: Schema.String }),
            {
              strict: true,
              decode: (old) => ({ type: old.type, amount: old.cents / 100, currency: "EUR" }),
              encode: (now) => ({ type: now.type, cents: Math.round(now.amount * 100) })
            }
          )
        )
      }
      : {}
  })

// A workflow that compensates when its effect dies.
class Reserve extends Schema.TaggedClass<Reserve>()("Reserve", { id: Schema.String }) {}
class ReservationFailed extends Schema.TaggedClass<ReservationFailed>()("ReservationFailed", {
  id: Schema.String,
  error: Schema.String,
  attempts: Schema.Number
}) {}
class Reserved extends Schema.TaggedClass<Reserved>()("Reserved", {}) {}
class GaveUp extends Schema.TaggedClass<GaveUp>()("GaveUp", { error: Schema.String }) {}
class Book extends Schema.TaggedClass<Book>()("Book", { id: Schema.String }) {}

const makeBooking = (type: string) =>
  Workflow.make({
    type,
    state: Schema.Struct({ status: Schema.Literal("new", "reserving", "failed") }),
    input: Schema.Union(Reserve, ReservationFailed),
    event: Schema.Union(Reserved, GaveUp),
    effect: Book,
    initialState: { status: "new" as const },
    workflowId: { field: "id" },
    uniqueKey: (input) => (input._tag === "Reserve" ? "the-only-one" : undefined),
    evolve: (_s, e) => ({ status: e._tag === "Reserved" ? "reserving" as const : "failed" as const }),
    decide: (_now, _s, input) =>
      input._tag === "Reserve"
        ? Decision.accept(new Reserved()).pipe(Decision.withEffect(new Book({ id: input.id })))
        : Decision.accept(new GaveUp({ error: input.error })),
    isTerminal: (s) => s.status === "failed",
    onDeadLetter: (notice) =>
      new ReservationFailed({ id: notice.workflowId, error: notice.error.split("\n")[0], attempts: notice.attempts })
  })

export const suite = (label: string, database: () => Layer.Layer<SqlClient.SqlClient, unknown>) =>
  describe(`long-lived workflows on ${label}`, () => {
    it.layer(PgWorkflowStore.layer.pipe(Layer.provideMerge(database())), { timeout: 120_000 })((it) => {
      it.effect(`runs on ${label}: the database says so, and another connection sees the writes`, () =>
        assertBackend(label))

      it.effect.prop(
        "state from snapshot + newer events equals a full replay",
        [
          FastCheck.array(
            FastCheck.tuple(
              FastCheck.constantFrom("add" as const, "mul" as const, "neg" as const),
              FastCheck.integer({ min: -9, max: 9 })
            ),
            { minLength: 1, maxLength: 40 }
          ),
          FastCheck.integer({ min: 1, max: 7 })
        ],
        ([ops, every]) =>
          Effect.gen(function*() {
            const Ledger = makeLedger(uniqueType("ledger"))
            const service = yield* makeService([Ledger], { snapshotEvery: every })
            for (const [op, n] of ops) yield* service.execute(Ledger, new Apply({ id: "l", op, n }))
            const events = yield* service.fetchWorkflowEvents(Ledger.type, "l")
            assert.strictEqual(events.length, ops.length)
            const expected = fold(Ledger, events.map((e) => e.payload))
            assert.deepStrictEqual(yield* service.fetchLatestState(Ledger, "l"), expected)
            const sql = yield* SqlClient.SqlClient
            const [row] = yield* sql<{ snapshot_sequence: unknown }>`
              SELECT snapshot_sequence FROM ironflow.workflow_instances WHERE workflow_type = ${Ledger.type}`
            const snapshotAt = Math.floor(ops.length / every) * every
            assert.strictEqual(row.snapshot_sequence === null ? 0 : Number(row.snapshot_sequence), snapshotAt)
            // A snapshot of another state version is ignored, never trusted.
            yield* sql`UPDATE ironflow.workflow_instances SET snapshot_version = 'other', snapshot_data = '{"value": 424242, "history": []}'
              WHERE workflow_type = ${Ledger.type}`
            assert.deepStrictEqual(yield* service.fetchLatestState(Ledger, "l"), expected)
            yield* service.execute(Ledger, new Apply({ id: "l", op: "add", n: 1 }))
            const after = yield* service.fetchWorkflowEvents(Ledger.type, "l")
            assert.deepStrictEqual(
              yield* service.fetchLatestState(Ledger, "l"),
              fold(Ledger, after.map((e) => e.payload))
            )
          }),
        { fastCheck: { numRuns: 15 } }
      )

      it.effect("old events are upcast when loaded; new ones are written with the current version", () =>
        Effect.gen(function*() {
          const type = uniqueType("purchases")
          const v1 = yield* makeService([purchasesV1(type)])
          yield* v1.execute(purchasesV1(type), new Buy({ id: "p", cents: 250 }))
          const V2 = purchasesV2(type)
          const v2 = yield* makeService([V2])
          assert.deepStrictEqual(yield* v2.fetchLatestState(V2, "p"), { total: 2.5 })
          yield* v2.execute(V2, new Buy({ id: "p", cents: 100 }))
          assert.deepStrictEqual(yield* v2.fetchLatestState(V2, "p"), { total: 3.5 })
          const events = yield* v2.fetchWorkflowEvents(type, "p")
          assert.deepStrictEqual(events.map((e) => e.version), [1, 1, 2])
          assert.deepStrictEqual(events[0].payload, { type: "Bought", cents: 250 })
          assert.deepStrictEqual(events[2].payload, { type: "Bought", amount: 1, currency: "EUR" })
        }))

      it.effect("an event version no upcaster knows fails loudly and leaves the instance inspectable", () =>
        Effect.gen(function*() {
          const type = uniqueType("purchases")
          yield* (yield* makeService([purchasesV1(type)])).execute(purchasesV1(type), new Buy({ id: "p", cents: 1 }))
          const Broken = purchasesV2(type, false)
          const service = yield* makeService([Broken])
          const error = yield* Effect.flip(service.execute(Broken, new Buy({ id: "p", cents: 5 })))
          assert.strictEqual(error._tag, "UnknownEventVersion")
          if (error._tag === "UnknownEventVersion") {
            assert.deepStrictEqual([error.workflowType, error.workflowId, error.sequence, error.version], [
              type,
              "p",
              1,
              1
            ])
          }
          assert.strictEqual((yield* Effect.flip(service.fetchLatestState(Broken, "p")))._tag, "UnknownEventVersion")
          // Nothing was written, and the raw events are still there.
          assert.strictEqual((yield* service.fetchWorkflowEvents(type, "p")).length, 2)
          // An event written by newer code is refused the same way.
          const sql = yield* SqlClient.SqlClient
          yield* sql`UPDATE ironflow.events SET event_version = 3 WHERE workflow_type = ${type} AND sequence = 2`
          const V2 = purchasesV2(type)
          const newer = yield* Effect.flip((yield* makeService([V2])).fetchLatestState(V2, "p"))
          assert.strictEqual(newer._tag, "UnknownEventVersion")
          if (newer._tag === "UnknownEventVersion") assert.include(newer.message, "written by newer code")
        }))

      it.effect("an upcaster out of range is refused when the workflow is defined", () =>
        Effect.sync(() => {
          assert.throws(() =>
            Workflow.make({
              ...purchasesV2("x"),
              eventVersion: 2,
              upcasters: { 2: Schema.Unknown },
              workflowId: (i) => i.id
            }), /upcaster from version 2 is out of range/)
        }))

      it.effect("retention deletes old processed rows and completed instances, never pending work or dead letters", () =>
        Effect.gen(function*() {
          const store = yield* WorkflowStore.WorkflowStore
          const sql = yield* SqlClient.SqlClient
          const Ledger = makeLedger(uniqueType("ledger"))
          const service = yield* makeService([Ledger])
          yield* service.execute(Ledger, new Apply({ id: "done", op: "add", n: 1 }))
          yield* service.execute(Ledger, new Apply({ id: "busy", op: "add", n: 1 }))
          yield* sql`UPDATE ironflow.workflow_instances SET completed_at = ${new Date(
            0
          )} WHERE workflow_type = ${Ledger.type}`
          // Rows of this test's type: processed, pending and dead.
          const row = (id: string, processed: boolean, dead: boolean, instance: string) =>
            sql`INSERT INTO ironflow.outbox (id, workflow_type, workflow_id, payload, created_at, processed_at, dead_lettered_at)
              VALUES (${id}::uuid, ${Ledger.type}, ${instance}, '{}'::jsonb, ${new Date(0)},
                ${processed ? new Date(0) : null}::timestamptz, ${dead ? new Date(0) : null}::timestamptz)`
          const ids = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()]
          yield* row(ids[0], true, false, "done")
          yield* row(ids[1], false, false, "busy")
          yield* row(ids[2], false, true, "busy")
          yield* TestClock.adjust("31 days")
          const dry = yield* Retention.prune({ olderThan: "30 days", completedInstances: true, dryRun: true })
          assert.isAtLeast(dry.outbox, 1)
          assert.strictEqual((yield* sql`SELECT 1 FROM ironflow.outbox WHERE id = ${ids[0]}::uuid`).length, 1)
          const report = yield* Retention.prune({ olderThan: "30 days", completedInstances: true, batchSize: 1 })
          assert.isAtLeast(report.outbox, 1)
          const left = yield* sql<
            { id: string }
          >`SELECT id::text AS id FROM ironflow.outbox WHERE workflow_type = ${Ledger.type}`
          assert.deepStrictEqual(left.map((r) => r.id).sort(), [ids[1], ids[2]].sort())
          // "done" had nothing pending: gone with its events; "busy" has pending and dead rows: kept.
          assert.isTrue(Option.isNone(yield* store.fetchInstance(Ledger.type, "done")))
          assert.strictEqual((yield* service.fetchWorkflowEvents(Ledger.type, "done")).length, 0)
          assert.isTrue(Option.isSome(yield* store.fetchInstance(Ledger.type, "busy")))
          assert.strictEqual(yield* store.countDeadLetters("effect", { workflowType: Ledger.type }), 1)
        }))

      it.effect("retention keeps the events of completed instances a projection has not read", () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const Ledger = makeLedger(uniqueType("ledger"))
          const service = yield* makeService([Ledger])
          yield* service.execute(Ledger, new Apply({ id: "x", op: "add", n: 1 }))
          yield* sql`UPDATE ironflow.workflow_instances SET completed_at = ${new Date(
            0
          )} WHERE workflow_type = ${Ledger.type}`
          // A projection that has read nothing yet (checkpoint at the start).
          const projection = Projection.make({
            name: uniqueType("lagging"),
            workflows: [Ledger],
            handle: () => Effect.void
          })
          yield* Projection.rebuild(projection)
          yield* TestClock.adjust("31 days")
          yield* Retention.prune({ olderThan: "30 days", completedInstances: true })
          assert.strictEqual((yield* service.fetchWorkflowEvents(Ledger.type, "x")).length, 1)
          yield* TestRuntime.awaitCondition(
            // Until it applied the event: a tick may read nothing while other suites' transactions hold the horizon.
            Effect.map(Projection.tick(projection), Option.exists((result) => result.applied > 0)),
            { description: "the projection to catch up" }
          )
          yield* Retention.prune({ olderThan: "30 days", completedInstances: true })
          assert.strictEqual((yield* service.fetchWorkflowEvents(Ledger.type, "x")).length, 0)
          // A projection that no longer exists would hold retention back: forget it.
          yield* sql`DELETE FROM ironflow.projection_positions WHERE projection_name = ${projection.name}`
        }))
    })

    it.effect(
      "a dead-lettered effect becomes an input: the workflow ends and its unique key is released",
      () =>
        Effect.gen(function*() {
          const Booking = makeBooking(uniqueType("booking"))
          const handler = Booking.handler(() => Effect.fail("hotel API down"))
          yield* Effect.gen(function*() {
            const service = yield* WorkflowService.WorkflowService
            const deadLetters = yield* DeadLetters.DeadLetters
            yield* service.execute(Booking, new Reserve({ id: "b-1" }))
            // A second booking cannot start while the first holds the unique key.
            const conflict = yield* Effect.flip(service.execute(Booking, new Reserve({ id: "b-2" })))
            assert.strictEqual(conflict._tag, "UniqueKeyConflict")
            yield* TestRuntime.awaitTerminal(Booking, "b-1", { advanceClock: "100 millis" })
            const state = yield* service.fetchLatestState(Booking, "b-1")
            assert.strictEqual(state.status, "failed")
            const events = yield* service.fetchWorkflowEvents(Booking.type, "b-1")
            assert.deepStrictEqual(events.map((e) => (e.payload as { type: string }).type), ["Reserved", "GaveUp"])
            assert.include((events[1].payload as { error: string }).error, "hotel API down")
            const sql = yield* SqlClient.SqlClient
            const outboxRow = sql<{ dead: unknown; processed: unknown; attempts: unknown }>`
            SELECT dead_lettered_at AS dead, processed_at AS processed, attempts FROM ironflow.outbox
            WHERE workflow_type = ${Booking.type}`
            // The row is marked handled right after the workflow's input commits.
            yield* TestRuntime.awaitCondition(Effect.map(outboxRow, ([r]) => r.processed !== null))
            const [row] = yield* outboxRow
            assert.isNotNull(row.dead)
            assert.isNotNull(row.processed)
            assert.strictEqual(Number(row.attempts), 3)
            // Handled: not listed as a dead letter any more, and the key is free again.
            assert.strictEqual(yield* deadLetters.count({ workflowType: Booking.type }), 0)
            const second = yield* service.execute(Booking, new Reserve({ id: "b-2" }))
            assert.strictEqual(second._tag, "Accepted")
          }).pipe(
            Effect.provide(
              WorkflowRuntime.layer.pipe(
                Layer.provide(WorkflowRegistry.layer([handler])),
                Layer.provide(RuntimeConfig.layer(TestRuntime.testConfig)),
                Layer.provideMerge(PgWorkflowStore.layer),
                Layer.provideMerge(database())
              )
            )
          )
        }),
      60_000
    )

    it.effect("a dead-lettered timer becomes an input too", () =>
      Effect.gen(function*() {
        class Start extends Schema.TaggedClass<Start>()("Start", { id: Schema.String }) {}
        class Ping extends Schema.TaggedClass<Ping>()("Ping", { id: Schema.String, n: Schema.Int }) {}
        class TimerDied
          extends Schema.TaggedClass<TimerDied>()("TimerDied", { id: Schema.String, decodable: Schema.Boolean })
        {}
        class Started extends Schema.TaggedClass<Started>()("Started", {}) {}
        class Abandoned extends Schema.TaggedClass<Abandoned>()("Abandoned", {}) {}
        const Pinger = Workflow.make({
          type: uniqueType("pinger"),
          state: Schema.Struct({ over: Schema.Boolean }),
          input: Schema.Union(Start, Ping, TimerDied),
          event: Schema.Union(Started, Abandoned),
          initialState: { over: false },
          workflowId: { field: "id" },
          evolve: (_s, e) => ({ over: e._tag === "Abandoned" }),
          decide: (_now, _s, input) =>
            input._tag === "Start"
              ? Decision.accept(new Started()).pipe(
                Decision.withTimerAfter("1 minute", new Ping({ id: input.id, n: 1 }))
              )
              : Decision.accept(new Abandoned()),
          isTerminal: (s) => s.over,
          onDeadLetter: (notice) =>
            notice.kind === "timer"
              ? new TimerDied({ id: notice.workflowId, decodable: Option.isSome(notice.input) })
              : undefined
        })
        yield* Effect.gen(function*() {
          const service = yield* WorkflowService.WorkflowService
          yield* service.execute(Pinger, new Start({ id: "t" }))
          // The timer's stored input no longer decodes (n is not an integer any more).
          const sql = yield* SqlClient.SqlClient
          yield* sql`UPDATE ironflow.timers SET input = '{"type": "Ping", "id": "t", "n": "one"}'::jsonb
            WHERE workflow_type = ${Pinger.type}`
          yield* TestClock.adjust("1 minute")
          yield* TestRuntime.awaitTerminal(Pinger, "t", { advanceClock: "100 millis" })
          const timerRow = sql<{ dead: unknown; processed: unknown; error: string }>`
            SELECT dead_lettered_at AS dead, processed_at AS processed, last_error AS error FROM ironflow.timers
            WHERE workflow_type = ${Pinger.type}`
          // The row is marked handled right after the workflow's input commits.
          yield* TestRuntime.awaitCondition(Effect.map(timerRow, ([r]) => r.processed !== null))
          const [row] = yield* timerRow
          assert.isNotNull(row.dead)
          assert.isNotNull(row.processed)
          assert.include(row.error, "Failed to execute timer input")
        }).pipe(
          Effect.provide(
            WorkflowRuntime.layer.pipe(
              Layer.provide(WorkflowRegistry.layer([Pinger])),
              Layer.provide(RuntimeConfig.layer(TestRuntime.testConfig)),
              Layer.provideMerge(PgWorkflowStore.layer),
              Layer.provideMerge(database())
            )
          )
        )
      }), 60_000)
  })
