/**
 * Projections on one backend: typed delivery, checkpoints, one transaction
 * with the read model, a failing event, rebuild, one runner at a time, and
 * commit-order safety with writers that commit out of order.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Option, Schema, TestClock } from "effect"
import { Decision, PgWorkflowStore, Projection, Retention, TestRuntime, Workflow, WorkflowStore } from "ironflow"
import { assertBackend } from "../support/database.js"
import { makeService, uniqueType } from "../support/helpers.js"

class Deposit extends Schema.TaggedClass<Deposit>()("Deposit", { accountId: Schema.String, amount: Schema.Number }) {}
class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Number }) {}

const makeAccount = (type: string) =>
  Workflow.make({
    type,
    state: Schema.Struct({ balance: Schema.Number }),
    input: Deposit,
    event: Deposited,
    initialState: { balance: 0 },
    workflowId: { field: "accountId" },
    evolve: (state, event) => ({ balance: state.balance + event.amount }),
    decide: (_now, _state, input) => Decision.accept(new Deposited({ amount: input.amount }))
  })

/** An account that is complete after its first deposit (so retention may delete it). */
const makeClosingAccount = (type: string) =>
  Workflow.make({
    type,
    state: Schema.Struct({ balance: Schema.Number }),
    input: Deposit,
    event: Deposited,
    initialState: { balance: 0 },
    workflowId: { field: "accountId" },
    evolve: (state, event) => ({ balance: state.balance + event.amount }),
    decide: (_now, _state, input) => Decision.accept(new Deposited({ amount: input.amount })),
    isTerminal: (state) => state.balance > 0
  })

/** A read model table per test, in the same database as the events. */
const readModel = (table: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE ${
      sql(table)
    } (global_sequence bigint PRIMARY KEY, account text NOT NULL, amount numeric NOT NULL)`
    return {
      rows: sql<{ global_sequence: unknown; account: string; amount: unknown }>`
        SELECT global_sequence, account, amount FROM ${sql(table)} ORDER BY global_sequence`.pipe(
        Effect.map((rows) =>
          rows.map((r) => ({ seq: Number(r.global_sequence), account: r.account, amount: Number(r.amount) }))
        )
      ),
      insert: (seq: number, account: string, amount: number) =>
        sql`INSERT INTO ${sql(table)} (global_sequence, account, amount) VALUES (${seq}, ${account}, ${amount})`,
      clear: sql`DELETE FROM ${sql(table)}`
    }
  })

/**
 * Waits until every event of `type` is older than the oldest write
 * transaction running on the server: only then can a projection read them
 * (tests of other suites run in parallel on the same server, and their
 * transactions hold the horizon back for a moment).
 */
const awaitReadable = (type: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    TestRuntime.awaitCondition(
      Effect.map(
        sql<{ readable: boolean | null }>`
          SELECT bool_and(transaction_id < pg_snapshot_xmin(pg_current_snapshot())) AS readable
          FROM ironflow.events WHERE workflow_type = ${type}`,
        ([row]) => row.readable !== false
      ),
      { description: `the events of ${type} to be readable by projections` }
    ))

export const suite = (
  label: string,
  database: () => Layer.Layer<SqlClient.SqlClient, unknown>,
  concurrentWriters: boolean
) =>
  describe(`Projection on ${label}`, () => {
    it.layer(PgWorkflowStore.layer.pipe(Layer.provideMerge(database())), { timeout: 60_000 })((it) => {
      it.effect(`runs on ${label}: the database says so, and another connection sees the writes`, () =>
        assertBackend(label))

      it.effect("delivers decoded events of its workflow types only, in order, and checkpoints", () =>
        Effect.gen(function*() {
          const Account = makeAccount(uniqueType("account"))
          const Other = makeAccount(uniqueType("other"))
          const service = yield* makeService([Account, Other])
          yield* service.execute(Account, new Deposit({ accountId: "a", amount: 1 }))
          yield* service.execute(Other, new Deposit({ accountId: "x", amount: 100 }))
          yield* service.execute(Account, new Deposit({ accountId: "b", amount: 2 }))
          yield* service.execute(Account, new Deposit({ accountId: "a", amount: 3 }))
          const seen: Array<string> = []
          const projection = Projection.make({
            name: uniqueType("balances"),
            workflows: [Account],
            handle: (e) => Effect.sync(() => seen.push(`${e.workflowId}:${e.sequence}:${e.event.amount}`))
          })
          yield* awaitReadable(Account.type)
          const first = yield* Projection.tick(projection, { batchSize: 2 })
          assert.deepStrictEqual(Option.map(first, (r) => [r.applied, r.read]), Option.some([2, 2]))
          const second = yield* Projection.tick(projection, { batchSize: 2 })
          assert.deepStrictEqual(Option.map(second, (r) => r.applied), Option.some(1))
          const third = yield* Projection.tick(projection, { batchSize: 2 })
          assert.deepStrictEqual(Option.map(third, (r) => r.read), Option.some(0))
          assert.deepStrictEqual(seen, ["a:1:1", "b:1:2", "a:2:3"])
          const store = yield* WorkflowStore.WorkflowStore
          const position = (yield* store.projectionPositions).find((p) => p.name === projection.name)
          assert.isDefined(position)
          const events = yield* service.fetchWorkflowEvents(Account.type, "a")
          assert.strictEqual(position!.lastSequence, events[1].globalSequence)
        }))

      it.effect("commits the read model and the checkpoint together; a failing event stops the batch", () =>
        Effect.gen(function*() {
          const Account = makeAccount(uniqueType("account"))
          const service = yield* makeService([Account])
          for (const amount of [1, 2, 13, 4]) yield* service.execute(Account, new Deposit({ accountId: "a", amount }))
          const table = yield* readModel(uniqueType("balances_rm"))
          let failOn13 = true
          const projection = Projection.make({
            name: uniqueType("balances"),
            workflows: [Account],
            handle: (e) =>
              Effect.gen(function*() {
                yield* table.insert(e.globalSequence, e.workflowId, e.event.amount)
                if (e.event.amount === 13 && failOn13) return yield* Effect.fail("unlucky" as const)
              })
          })
          yield* awaitReadable(Account.type)
          const failed = yield* Projection.tick(projection)
          assert.isTrue(Option.isSome(failed))
          const result = Option.getOrThrow(failed)
          assert.strictEqual(result.applied, 2)
          assert.strictEqual(Option.getOrThrow(result.failure)._tag, "ProjectionHandlerError")
          // The failing event's own write rolled back; the two before it committed with the checkpoint.
          assert.deepStrictEqual((yield* table.rows).map((r) => r.amount), [1, 2])
          failOn13 = false
          const retried = Option.getOrThrow(yield* Projection.tick(projection))
          assert.strictEqual(retried.applied, 2)
          assert.deepStrictEqual((yield* table.rows).map((r) => r.amount), [1, 2, 13, 4])
        }))

      it.effect("a handler that hangs times out: its tick fails, and executes meanwhile go through", () =>
        Effect.gen(function*() {
          const Account = makeAccount(uniqueType("account"))
          const service = yield* makeService([Account])
          for (const amount of [1, 13, 4]) yield* service.execute(Account, new Deposit({ accountId: "a", amount }))
          const table = yield* readModel(uniqueType("hang_rm"))
          const projection = Projection.make({
            name: uniqueType("hanging"),
            workflows: [Account],
            handle: (e) =>
              e.event.amount === 13 ? Effect.never : Effect.asVoid(table.insert(e.globalSequence, e.workflowId, 1))
          })
          yield* awaitReadable(Account.type)
          const ticking = yield* Effect.fork(Projection.tick(projection, { handlerTimeout: "300 millis" }))
          // While the handler hangs, the embedded database's only connection is the tick's: this waits for it.
          yield* service.execute(Account, new Deposit({ accountId: "b", amount: 5 }))
          const result = Option.getOrThrow(yield* Fiber.join(ticking))
          assert.strictEqual(result.applied, 1)
          const failure = Option.getOrThrow(result.failure)
          assert.strictEqual(failure._tag, "ProjectionHandlerError")
          assert.include(failure.message, "timed out after 300ms")
          assert.deepStrictEqual((yield* table.rows).length, 1)
          assert.strictEqual((yield* service.fetchWorkflowEvents(Account.type, "b")).length, 1)
        }))

      it.effect("rebuild clears the read model and replays every event", () =>
        Effect.gen(function*() {
          const Account = makeAccount(uniqueType("account"))
          const service = yield* makeService([Account])
          for (const amount of [5, 6]) yield* service.execute(Account, new Deposit({ accountId: "a", amount }))
          const table = yield* readModel(uniqueType("balances_rm"))
          const projection = Projection.make({
            name: uniqueType("balances"),
            workflows: [Account],
            handle: (e) => table.insert(e.globalSequence, e.workflowId, e.event.amount),
            reset: table.clear
          })
          yield* awaitReadable(Account.type)
          yield* Projection.tick(projection)
          assert.strictEqual((yield* table.rows).length, 2)
          yield* Projection.rebuild(projection)
          assert.strictEqual((yield* table.rows).length, 0)
          yield* Projection.tick(projection)
          assert.deepStrictEqual((yield* table.rows).map((r) => r.amount), [5, 6])
        }))

      it.effect("an event that no longer decodes stops the projection with a typed error", () =>
        Effect.gen(function*() {
          const Account = makeAccount(uniqueType("account"))
          const service = yield* makeService([Account])
          yield* service.execute(Account, new Deposit({ accountId: "a", amount: 1 }))
          const sql = yield* SqlClient.SqlClient
          yield* sql`INSERT INTO ironflow.events (workflow_type, workflow_id, sequence, payload)
            VALUES (${Account.type}, 'a', 2, ${JSON.stringify({ type: "Deposited", amount: "lots" })}::jsonb)`
          const projection = Projection.make({
            name: uniqueType("balances"),
            workflows: [Account],
            handle: () => Effect.void
          })
          yield* awaitReadable(Account.type)
          const result = Option.getOrThrow(yield* Projection.tick(projection))
          assert.strictEqual(result.applied, 1)
          const failure = Option.getOrThrow(result.failure)
          assert.strictEqual(failure._tag, "EventDeserializationError")
          if (failure._tag === "EventDeserializationError") assert.strictEqual(failure.sequence, 2)
        }))

      it.effect("two runners of one projection never apply an event twice", () =>
        Effect.gen(function*() {
          const Account = makeAccount(uniqueType("account"))
          const service = yield* makeService([Account])
          for (let i = 0; i < 30; i++) {
            yield* service.execute(Account, new Deposit({ accountId: `a${i % 3}`, amount: i }))
          }
          const applied = new Map<number, number>()
          const projection = Projection.make({
            name: uniqueType("balances"),
            workflows: [Account],
            handle: (e) => Effect.sync(() => applied.set(e.globalSequence, (applied.get(e.globalSequence) ?? 0) + 1))
          })
          const runners = yield* Effect.forEach(
            [1, 2],
            () => Effect.fork(Projection.run(projection, { batchSize: 4, pollInterval: "20 millis" }))
          )
          yield* TestRuntime.awaitCondition(Effect.sync(() => applied.size === 30), {
            description: "30 events applied"
          })
          yield* Fiber.interruptAll(runners)
          assert.isTrue(Array.from(applied.values()).every((n) => n === 1))
        }))

      it.effect("never skips an event whose sequence was assigned before a higher one that committed first", () =>
        Effect.gen(function*() {
          const Account = makeAccount(uniqueType("account"))
          const service = yield* makeService([Account])
          const sql = yield* SqlClient.SqlClient
          const seen: Array<number> = []
          const projection = Projection.make({
            name: uniqueType("balances"),
            workflows: [Account],
            handle: (e) => Effect.sync(() => seen.push(e.event.amount))
          })
          // Writer A takes a global sequence first and commits last.
          const written = yield* Deferred.make<void>()
          const release = yield* Deferred.make<void>()
          const writerA = Effect.gen(function*() {
            yield* sql`INSERT INTO ironflow.events (workflow_type, workflow_id, sequence, payload)
              VALUES (${Account.type}, 'slow', 1, ${JSON.stringify({ type: "Deposited", amount: 1 })}::jsonb)`
            yield* Deferred.succeed(written, undefined)
            yield* Deferred.await(release)
          }).pipe(sql.withTransaction)
          let naiveCheckpoint = 0
          if (concurrentWriters) {
            const a = yield* Effect.fork(writerA)
            yield* Deferred.await(written)
            // Writer B takes a higher global sequence and commits first.
            yield* service.execute(Account, new Deposit({ accountId: "fast", amount: 2 }))
            // ironflow 0.6.0's reader (global_sequence > checkpoint) sees B now and would checkpoint past A.
            const store = yield* WorkflowStore.WorkflowStore
            const visible = (yield* store.fetchEventsSince(0, 100_000)).filter((e) => e.workflowType === Account.type)
            assert.deepStrictEqual(visible.map((e) => e.workflowId), ["fast"])
            naiveCheckpoint = visible[0].globalSequence
            const during = Option.getOrThrow(yield* Projection.tick(projection))
            // Nothing is applied past a transaction still in flight: B waits for A.
            assert.deepStrictEqual(seen, [])
            assert.strictEqual(during.applied, 0)
            yield* Deferred.succeed(release, undefined)
            yield* Fiber.join(a)
          } else {
            // The embedded database is one session: transactions cannot interleave, so commits are in order.
            yield* Deferred.succeed(release, undefined)
            yield* writerA
            yield* service.execute(Account, new Deposit({ accountId: "fast", amount: 2 }))
          }
          // Runners tick until everything older than the oldest running write transaction is in; a
          // transaction of another test in the cluster may delay that briefly (never skip).
          yield* TestRuntime.awaitCondition(
            Effect.map(Projection.tick(projection), () => seen.length === 2),
            { description: "both events projected" }
          )
          assert.deepStrictEqual([...seen].sort(), [1, 2])
          const events = [
            ...(yield* service.fetchWorkflowEvents(Account.type, "slow")),
            ...(yield* service.fetchWorkflowEvents(Account.type, "fast"))
          ]
          // A's event has the lower global sequence, yet it was not skipped.
          assert.isTrue(events[0].globalSequence < events[1].globalSequence)
          if (concurrentWriters) assert.isTrue(events[0].globalSequence < naiveCheckpoint)
        }))
    })

    describe("retention", () => {
      // Each test on a fresh database: the suite's other projections would hold retention back too.
      const fresh = () => PgWorkflowStore.layer.pipe(Layer.provideMerge(database()))
      const eventCount = (type: string) =>
        Effect.flatMap(SqlClient.SqlClient, (sql) =>
          Effect.map(
            sql<{ n: unknown }>`SELECT count(*) AS n FROM ironflow.events WHERE workflow_type = ${type}`,
            ([row]) => Number(row.n)
          ))

      it.effect("a projection that has started holds retention back before its first checkpoint", () =>
        Effect.gen(function*() {
          const Closing = makeClosingAccount(uniqueType("closing"))
          const service = yield* makeService([Closing])
          yield* service.execute(Closing, new Deposit({ accountId: "c", amount: 1 }))
          yield* awaitReadable(Closing.type)
          let failing = true
          let attempts = 0
          // Its first event keeps failing, so it applies nothing (and checkpoints nothing) for a while.
          const projection = Projection.make({
            name: uniqueType("closing-projection"),
            workflows: [Closing],
            handle: () =>
              Effect.suspend(() => {
                attempts++
                return failing ? Effect.fail("not yet" as const) : Effect.void
              })
          })
          yield* Effect.gen(function*() {
            yield* TestRuntime.awaitCondition(
              Effect.sync(() =>
                attempts > 0
              ),
              { description: "a first attempt" }
            )
            yield* TestClock.adjust("2 days")
            const held = yield* Retention.prune({ olderThan: "1 day", completedInstances: true })
            assert.strictEqual(held.instances, 0)
            assert.strictEqual(yield* eventCount(Closing.type), 1)

            failing = false
            const store = yield* WorkflowStore.WorkflowStore
            yield* TestRuntime.awaitCondition(
              Effect.map(
                store.projectionPositions,
                (ps) => ps.some((p) => p.name === projection.name && p.lastSequence > 0)
              ),
              { description: "the projection to read the event" }
            )
            const released = yield* Retention.prune({ olderThan: "1 day", completedInstances: true })
            assert.strictEqual(released.instances, 1)
            assert.strictEqual(yield* eventCount(Closing.type), 0)
          }).pipe(
            Effect.provide(
              Projection.layer([projection], { errorBackoffBase: "20 millis", errorBackoffMax: "50 millis" })
            )
          )
        }).pipe(Effect.provide(fresh())), 60_000)

      it.effect("a declared projection holds retention back until it is forgotten", () =>
        Effect.gen(function*() {
          const Closing = makeClosingAccount(uniqueType("closing"))
          const service = yield* makeService([Closing])
          yield* service.execute(Closing, new Deposit({ accountId: "c", amount: 1 }))
          const retired = Projection.make({
            name: uniqueType("retired"),
            workflows: [Closing],
            handle: () =>
              Effect.void
          })
          yield* Projection.declare(retired)
          yield* Projection.declare(retired) // idempotent
          const store = yield* WorkflowStore.WorkflowStore
          const [position] = (yield* store.projectionPositions).filter((p) => p.name === retired.name)
          assert.strictEqual(position.lastSequence, 0)
          yield* TestClock.adjust("2 days")
          assert.strictEqual((yield* Retention.prune({ olderThan: "1 day", completedInstances: true })).instances, 0)
          assert.isTrue(yield* Projection.forget(retired.name))
          assert.isFalse(yield* Projection.forget(retired.name))
          assert.isFalse((yield* store.projectionPositions).some((p) => p.name === retired.name))
          assert.strictEqual((yield* Retention.prune({ olderThan: "1 day", completedInstances: true })).instances, 1)
          assert.strictEqual(yield* eventCount(Closing.type), 0)
        }).pipe(Effect.provide(fresh())), 60_000)
    })

    describe("Projection.layer", () => {
      it.effect("runs projections as fibers woken by new events", () =>
        Effect.gen(function*() {
          const Account = makeAccount(uniqueType("account"))
          const seen: Array<number> = []
          const projection = Projection.make({
            name: uniqueType("balances"),
            workflows: [Account],
            handle: (e) => Effect.sync(() => seen.push(e.event.amount))
          })
          yield* Effect.gen(function*() {
            const service = yield* makeService([Account])
            yield* service.execute(Account, new Deposit({ accountId: "a", amount: 7 }))
            yield* service.execute(Account, new Deposit({ accountId: "b", amount: 8 }))
            yield* TestRuntime.awaitCondition(Effect.sync(() => seen.length === 2), {
              description: "two events projected"
            })
          }).pipe(
            Effect.provide(
              Projection.layer([projection]).pipe(
                Layer.provideMerge(PgWorkflowStore.layer),
                Layer.provideMerge(database())
              )
            )
          )
          assert.deepStrictEqual(seen, [7, 8])
        }), 60_000)
    })
  })
