/**
 * Group transactions (issue #12) and the bad input they refuse (issue #17,
 * items 7 and 8), run over `PgWorkflowStore` on a given database: one group
 * applies many inputs, each input's trouble settles it alone, rows of a lost
 * lease apply nothing, a row's input is applied at most once, and groups and
 * single executes on overlapping instances never deadlock.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Option, Schema } from "effect"
import { Decision, ExecuteOutcome, PgWorkflowStore, Workflow, WorkflowError, WorkflowStore } from "ironflow"
import * as GroupCommit from "../../src/internal/groupCommit.js"
import { countEvents, insertRawEvents, instanceRow, makeService, queueRows, uniqueType } from "../support/helpers.js"
import {
  awaitCondition,
  awaitRows,
  live,
  liveSleep,
  rowsOf,
  startRuntime,
  TEST_MAX_ATTEMPTS
} from "../support/runtimeHarness.js"

class Add extends Schema.TaggedClass<Add>("Probe/Add")("Add", { id: Schema.String, n: Schema.Number }) {}
class Throw extends Schema.TaggedClass<Throw>("Probe/Throw")("Throw", { id: Schema.String }) {}
class Note extends Schema.TaggedClass<Note>("Probe/Note")("Note", { id: Schema.String, text: Schema.String }) {}
class Later extends Schema.TaggedClass<Later>("Probe/Later")("Later", {
  id: Schema.String,
  millis: Schema.Number,
  key: Schema.optional(Schema.String)
}) {}
class Forget extends Schema.TaggedClass<Forget>("Probe/Forget")("Forget", { id: Schema.String, key: Schema.String }) {}
class Carry extends Schema.TaggedClass<Carry>("Probe/Carry")("Carry", { id: Schema.String, value: Schema.Unknown }) {}
const Input = Schema.Union(Add, Throw, Note, Later, Forget, Carry)

class Added extends Schema.TaggedClass<Added>("Probe/Added")("Added", { n: Schema.Number }) {}
class Noted extends Schema.TaggedClass<Noted>("Probe/Noted")("Noted", { text: Schema.String }) {}
class Carried extends Schema.TaggedClass<Carried>("Probe/Carried")("Carried", { value: Schema.Unknown }) {}
const Event = Schema.Union(Added, Noted, Carried)

class Work extends Schema.TaggedClass<Work>("Probe/Work")("Work", { n: Schema.Number }) {}

const State = Schema.Struct({ total: Schema.Number })

/** Adds numbers (a negative one is rejected, reaching 1000 completes); throws on `Throw`; carries what it is given. */
const makeProbe = (type: string, options: { readonly rejectDeadLetters?: boolean } = {}) =>
  Workflow.make({
    type,
    // An onDeadLetter input that decide rejects (-1): the dead letter is not handled.
    ...(options.rejectDeadLetters === true
      ? { onDeadLetter: (notice: { readonly workflowId: string }) => new Add({ id: notice.workflowId, n: -1 }) }
      : {}),
    state: State,
    input: Input,
    event: Event,
    effect: Work,
    rejection: Schema.String,
    initialState: { total: 0 },
    workflowId: { field: "id" },
    evolve: (state, event) => event._tag === "Added" ? { total: state.total + event.n } : state,
    isTerminal: (state) => state.total >= 1000,
    decide: (_now, _state, input) => {
      switch (input._tag) {
        case "Add":
          return input.n < 0
            ? Decision.reject("negative")
            : Decision.withEffect(
              Decision.accept<typeof Event.Type>(new Added({ n: input.n })),
              new Work({ n: input.n })
            )
        case "Throw":
          throw new Error("decide blew up")
        case "Note":
          return Decision.accept(new Noted({ text: input.text }))
        case "Carry":
          return Decision.accept(new Carried({ value: input.value }))
        case "Later":
          return Decision.withTimerAfter(
            Decision.accept<typeof Event.Type>(new Added({ n: 0 })),
            input.millis,
            new Add({ id: input.id, n: 1 }),
            { key: input.key }
          )
        case "Forget":
          return Decision.cancelTimer(Decision.accept<typeof Event.Type>(new Added({ n: 0 })), input.key)
      }
    }
  })

const config: GroupCommit.Config = { recordInputObservations: false, snapshotEvery: 100, maxPayloadBytes: 1024 * 1024 }

const apply = (items: ReadonlyArray<GroupCommit.Item>, fence?: GroupCommit.Fence) =>
  Effect.flatMap(WorkflowStore.WorkflowStore, (store) => GroupCommit.apply(store, config, items, fence))

const outcomeOf = (result: GroupCommit.ItemResult) =>
  result._tag === "Done" ? result.outcome._tag : result._tag === "Failed" ? result.error._tag : "Fenced"

/** Claims every ready effect of a type as `lockedBy`. */
const claimAll = (workflowType: string, lockedBy: string) =>
  Effect.flatMap(WorkflowStore.WorkflowStore, (store) =>
    store.claim({
      kind: "effect",
      workerId: lockedBy,
      workflowTypes: [workflowType],
      limit: 100,
      lease: Duration.seconds(30),
      exclude: []
    }))

const deepValue = (depth: number): unknown => {
  let value: unknown = "leaf"
  for (let i = 0; i < depth; i++) value = [value]
  return value
}

export const suite = (label: string, database: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  it.layer(PgWorkflowStore.layer.pipe(Layer.provideMerge(database)), { timeout: 60_000 })(
    `group commit (${label})`,
    (it) => {
      describe("one group, many inputs", () => {
        it.effect("each input's trouble settles it alone; the rest of the group commits", () =>
          Effect.gen(function*() {
            const type = uniqueType("group_isolation")
            const W = makeProbe(type)
            // An instance whose stored event this code cannot read (version 9 of a version-1 workflow).
            yield* insertRawEvents(type, "unreadable", [{ type: "Added", n: 1 }])
            const sql = yield* SqlClient.SqlClient
            yield* sql`UPDATE ironflow.events SET event_version = 9 WHERE workflow_type = ${type}`
            // A completed instance.
            yield* apply([{ workflow: W, input: new Add({ id: "done", n: 1000 }) }])

            const results = yield* apply([
              { workflow: W, input: new Add({ id: "a", n: 1 }) },
              { workflow: W, input: new Throw({ id: "a" }) },
              { workflow: W, input: new Add({ id: "a", n: -1 }) },
              { workflow: W, input: new Note({ id: "a", text: "nul \u0000 inside" }) },
              { workflow: W, input: new Add({ id: "a", n: 2 }) },
              { workflow: W, input: new Add({ id: "done", n: 1 }) },
              { workflow: W, input: new Add({ id: "unreadable", n: 1 }) },
              { workflow: W, input: new Later({ id: "b", millis: Infinity }) },
              { workflow: W, input: new Add({ id: "b", n: 5 }) },
              { workflow: W, input: new Add({ id: "rejected-first", n: -1 }) }
            ])
            assert.deepStrictEqual(results.map(outcomeOf), [
              "Accepted",
              "WorkflowFunctionError",
              "Rejected",
              "UnstorableValue",
              "Accepted",
              "AlreadyCompleted",
              "UnknownEventVersion",
              "UnstorableValue",
              "Accepted",
              "Rejected"
            ])
            const thrown = results[1]
            assert(thrown._tag === "Failed" && thrown.error._tag === "WorkflowFunctionError")
            assert.strictEqual(thrown.error.function, "decide")
            assert.strictEqual(thrown.error.workflowId, "a")
            assert.include(thrown.error.message, "decide blew up")
            const delay = results[7]
            assert(delay._tag === "Failed" && delay.error._tag === "UnstorableValue")
            assert.strictEqual(delay.error.subject, "timer delay")

            // The accepted inputs of "a" were applied in order, on one state: 1 + 2.
            const service = yield* makeService([W.handler(() => Effect.succeedNone)])
            assert.deepStrictEqual(yield* service.fetchLatestState(W, "a"), { total: 3 })
            assert.strictEqual(yield* countEvents(type, "a"), 2)
            assert.strictEqual(yield* countEvents(type, "b"), 1)
            assert.strictEqual((yield* queueRows("outbox", type)).filter((r) => r.workflowId === "a").length, 2)
            // A rejected first input leaves no instance, even inside a group.
            assert.isTrue(Option.isNone(yield* instanceRow(type, "rejected-first")))
          }))

        it.effect("a keyed timer cancelled by a later input of the same group is not written", () =>
          Effect.gen(function*() {
            const type = uniqueType("group_cancel")
            const W = makeProbe(type)
            const results = yield* apply([
              { workflow: W, input: new Later({ id: "t", millis: 60_000, key: "k" }) },
              { workflow: W, input: new Forget({ id: "t", key: "k" }) },
              { workflow: W, input: new Later({ id: "t", millis: 120_000, key: "k2" }) }
            ])
            assert.deepStrictEqual(results.map(outcomeOf), ["Accepted", "Accepted", "Accepted"])
            const timers = yield* queueRows("timers", type)
            assert.deepStrictEqual(timers.filter((t) => t.processedAt === null).map((t) => t.key), ["k2"])
          }))
      })

      describe("fence", () => {
        it.effect("a row's input is applied with its ack, at most once", () =>
          Effect.gen(function*() {
            const type = uniqueType("group_once")
            const W = makeProbe(type)
            yield* apply([{ workflow: W, input: new Add({ id: "x", n: 1 }) }])
            const [row] = yield* claimAll(type, "worker-1")
            const item = { workflow: W, input: new Add({ id: "x", n: 10 }), row: row.id }
            const fence = { kind: "effect", lockedBy: "worker-1", completed: [] } as const
            assert.deepStrictEqual((yield* apply([item], fence)).map(outcomeOf), ["Accepted"])
            const [acked] = yield* queueRows("outbox", type)
            assert.isNotNull(acked.processedAt)
            // The same group again (a retry after a commit whose answer was lost): nothing is applied twice.
            assert.deepStrictEqual((yield* apply([item], fence)).map(outcomeOf), ["Fenced"])
            assert.strictEqual(yield* countEvents(type, "x"), 2)
          }))

        it.effect("a lease lost before the commit applies nothing", () =>
          Effect.gen(function*() {
            const type = uniqueType("group_fence")
            const W = makeProbe(type)
            yield* apply([{ workflow: W, input: new Add({ id: "x", n: 1 }) }])
            yield* apply([{ workflow: W, input: new Add({ id: "y", n: 1 }) }])
            const rows = yield* claimAll(type, "worker-1")
            assert.strictEqual(rows.length, 2)
            const lost = rows.find((r) => r.workflowId === "x")!
            const held = rows.find((r) => r.workflowId === "y")!
            // Another worker took over x's row (the lease expired and it was claimed again).
            const sql = yield* SqlClient.SqlClient
            yield* sql`UPDATE ironflow.outbox SET locked_by = 'worker-2' WHERE id = ${lost.id}`
            const results = yield* apply([
              { workflow: W, input: new Add({ id: "x", n: 10 }), row: lost.id },
              { workflow: W, input: new Add({ id: "y", n: 10 }), row: held.id }
            ], { kind: "effect", lockedBy: "worker-1", completed: [] })
            assert.deepStrictEqual(results.map(outcomeOf), ["Fenced", "Accepted"])
            assert.strictEqual(yield* countEvents(type, "x"), 1)
            assert.strictEqual(yield* countEvents(type, "y"), 2)
            const after = yield* queueRows("outbox", type)
            const lostRow = after.find((r) => r.id === lost.id)!
            assert.isNull(lostRow.processedAt)
            assert.strictEqual(lostRow.lockedBy, "worker-2")
          }))
      })

      describe("lock ordering", () => {
        it.effect(
          "groups in opposite orders and single executes on the same instances never deadlock",
          () =>
            Effect.gen(function*() {
              const type = uniqueType("group_order")
              const W = makeProbe(type)
              const service = yield* makeService([W.handler(() => Effect.succeedNone)])
              const ids = ["a", "b", "c", "d"]
              const forward = ids.map((id) => ({ workflow: W, input: new Add({ id, n: 1 }) }))
              const backward = [...forward].reverse()
              const rounds = 15
              yield* Effect.all([
                Effect.forEach(Array.from({ length: rounds }), () => apply(forward)),
                Effect.forEach(Array.from({ length: rounds }), () => apply(backward)),
                Effect.forEach(
                  Array.from({ length: rounds * ids.length }, (_, i) => ids[i % ids.length]),
                  (id) => service.execute(W, new Add({ id, n: 1 })),
                  { concurrency: 4 }
                )
              ], { concurrency: "unbounded" })
              for (const id of ids) {
                assert.strictEqual(yield* countEvents(type, id), rounds * 3)
                assert.deepStrictEqual(yield* service.fetchLatestState(W, id), { total: rounds * 3 })
              }
            }),
          { timeout: 60_000 }
        )
      })

      describe("runtime", () => {
        it.scoped("a handler error with a NUL byte is stored, and the row reaches its dead letter", () =>
          Effect.gen(function*() {
            const type = uniqueType("nul_error")
            const W = makeProbe(type)
            const handler = W.handler(() => Effect.fail(new Error("bad \u0000 byte, lone \uD800 surrogate")))
            const rt = yield* startRuntime([handler])
            yield* rt.service.execute(W, new Add({ id: "n", n: 1 }))
            yield* awaitCondition(
              "a dead letter",
              Effect.map(rt.deadLetters.count({ workflowType: type }), (n) => n === 1),
              { advance: "50 millis" }
            )
            const [dead] = yield* rt.deadLetters.fetch({ workflowType: type })
            assert.strictEqual(dead.attempts, TEST_MAX_ATTEMPTS)
            assert.include(Option.getOrElse(dead.lastError, () => ""), "bad \uFFFD byte, lone \uFFFD surrogate")
          }))

        it.scoped("a handler result whose decide throws is a failed attempt with the error named", () =>
          Effect.gen(function*() {
            const type = uniqueType("result_throws")
            const W = makeProbe(type)
            const handler = W.handler((work, ctx) => Effect.succeedSome(new Throw({ id: ctx.workflow.workflowId })))
            const rt = yield* startRuntime([handler])
            yield* rt.service.execute(W, new Add({ id: "r", n: 1 }))
            yield* awaitCondition(
              "a dead letter",
              Effect.map(rt.deadLetters.count({ workflowType: type }), (n) => n === 1),
              { advance: "50 millis" }
            )
            const [dead] = yield* rt.deadLetters.fetch({ workflowType: type })
            const lastError = Option.getOrElse(dead.lastError, () => "")
            assert.isTrue(lastError.startsWith("Failed to route result: decide of workflow"), lastError)
            assert.include(lastError, "decide blew up")
          }))

        it.scoped("an onDeadLetter input that is rejected leaves a visible dead letter", () =>
          Effect.gen(function*() {
            const type = uniqueType("dead_rejected")
            const W = makeProbe(type, { rejectDeadLetters: true })
            const handler = W.handler(() => Effect.fail("always"))
            const rt = yield* startRuntime([handler])
            yield* rt.service.execute(W, new Add({ id: "d", n: 1 }))
            yield* awaitCondition(
              "a dead letter",
              Effect.map(rt.deadLetters.count({ workflowType: type }), (n) => n === 1),
              { advance: "50 millis" }
            )
            const [row] = yield* rowsOf("effect", type)
            assert.isNotNull(row.deadLetteredAt)
            assert.isNull(row.processedAt)
          }))
      })

      describe("shutdown", () => {
        it.scoped(
          "with two workers: nothing is claimed once it starts, and it ends within one shutdownTimeout",
          () =>
            Effect.gen(function*() {
              const type = uniqueType("shutdown_two")
              const W = makeProbe(type)
              const started = new Set<number>()
              // A handler that ignores interruption and outlives the shutdown timeout by far.
              const handler = W.handler((work) =>
                Effect.sync(() => started.add(work.n)).pipe(
                  Effect.zipRight(work.n === 1 ? Effect.uninterruptible(Effect.sleep("8 seconds")) : Effect.void),
                  Effect.as(Option.none())
                )
              )
              const rt = yield* startRuntime([handler], {
                effectWorkers: 2,
                timerWorkers: 2,
                shutdownTimeout: "2 seconds"
              })
              yield* rt.service.execute(W, new Add({ id: "long", n: 1 }))
              yield* awaitCondition("the long handler started", Effect.sync(() => started.has(1)))
              const begin = Date.now()
              const shutdown = yield* Effect.fork(rt.shutdown)
              yield* liveSleep("150 millis")
              yield* rt.service.execute(W, new Add({ id: "late", n: 2 }))
              yield* Fiber.join(shutdown)
              const took = Date.now() - begin
              // Before: each worker drained after the other (2 × 2 s), and waited for the uninterruptible handler.
              assert.isBelow(took, 3_500, `shutdown took ${took} ms`)
              assert.isFalse(started.has(2), "an effect enqueued during shutdown was started")
              const late = (yield* rowsOf("effect", type)).find((r) => r.workflowId === "late")!
              assert.isNull(late.lockedBy)
              assert.strictEqual(late.attempts, 0)
            }).pipe(live),
          { timeout: 30_000 }
        )
      })

      describe("hung handlers", () => {
        it.scoped(
          "rows claimed behind hung handlers are not held by the heartbeat: another worker runs them",
          () =>
            Effect.gen(function*() {
              const type = uniqueType("hung")
              const W = makeProbe(type)
              const hanging = W.handler((work) => work.n === 1 ? Effect.never : Effect.succeedNone)
              const healthy = W.handler(() => Effect.succeedNone)
              const lease = { effectLockDuration: "1500 millis", leaseHeartbeatInterval: "300 millis" } as const
              const a = yield* startRuntime([hanging], { ...lease, workerId: `${type}-a`, handlerConcurrency: 1 })
              for (const n of [1, 2, 3]) yield* a.service.execute(W, new Add({ id: `h${n}`, n }))
              yield* awaitCondition(
                "all three rows claimed by the hung worker",
                Effect.map(
                  rowsOf("effect", type),
                  (rows) => rows.length === 3 && rows.every((r) => r.lockedBy?.startsWith(`${type}-a`) === true)
                )
              )
              yield* startRuntime([healthy], { ...lease, workerId: `${type}-b` })
              const rows = yield* awaitRows(
                "effect",
                type,
                "the two rows behind the hung handler processed elsewhere",
                (rows) => rows.filter((r) => r.processedAt !== null).length === 2,
                { timeout: "15 seconds" }
              )
              const hung = rows.find((r) => r.workflowId === "h1")!
              assert.isNull(hung.processedAt)
              assert.isTrue(hung.lockedBy?.startsWith(`${type}-a`))
            }).pipe(live),
          { timeout: 30_000 }
        )

        it.effect("stats count rows held for more than a minute as long-running", () =>
          Effect.gen(function*() {
            const type = uniqueType("long_running")
            const W = makeProbe(type)
            yield* apply([{ workflow: W, input: new Add({ id: "l", n: 1 }) }])
            const [row] = yield* claimAll(type, "worker-1")
            const store = yield* WorkflowStore.WorkflowStore
            const before = (yield* store.queueStats).find((s) => s.workflowType === type)!
            assert.strictEqual(before.longRunning, 0)
            const sql = yield* SqlClient.SqlClient
            yield* sql`UPDATE ironflow.outbox SET claimed_at = claimed_at - interval '2 minutes' WHERE id = ${row.id}`
            const after = (yield* store.queueStats).find((s) => s.workflowType === type)!
            assert.strictEqual(after.longRunning, 1)
          }))
      })

      describe("bad input is a typed error on execute", () => {
        it.effect("a decide that throws can be caught by tag, naming the workflow, id and function", () =>
          Effect.gen(function*() {
            const type = uniqueType("throws")
            const W = makeProbe(type)
            const service = yield* makeService([W.handler(() => Effect.succeedNone)])
            const caught = yield* service.execute(W, new Throw({ id: "t" })).pipe(
              Effect.catchTag("WorkflowFunctionError", (error) => Effect.succeed(error))
            )
            assert(caught instanceof WorkflowError.WorkflowFunctionError)
            assert.strictEqual(caught.workflowType, type)
            assert.strictEqual(caught.workflowId, "t")
            assert.strictEqual(caught.function, "decide")
            assert.isTrue(Option.isNone(yield* instanceRow(type, "t")))
          }))

        it.effect("a workflowId that throws is a typed error too", () =>
          Effect.gen(function*() {
            const type = uniqueType("id_throws")
            const W = Workflow.make({
              type,
              state: State,
              input: Add,
              event: Added,
              initialState: { total: 0 },
              workflowId: () => {
                throw new Error("no id")
              },
              evolve: (state) => state,
              decide: () => Decision.accept(new Added({ n: 1 }))
            })
            const service = yield* makeService([W.handler(() => Effect.succeedNone)])
            const error = yield* Effect.flip(service.execute(W, new Add({ id: "x", n: 1 })))
            assert(error._tag === "WorkflowFunctionError")
            assert.strictEqual(error.function, "workflowId")
            assert.isUndefined(error.workflowId)
          }))

        it.effect("ids that are not well-formed Unicode are refused (two of them would read one instance)", () =>
          Effect.gen(function*() {
            const type = uniqueType("surrogates")
            const W = makeProbe(type)
            const service = yield* makeService([W.handler(() => Effect.succeedNone)])
            for (const id of ["a\uD800", "a\uD801", "\uDC00b", "nul\u0000"]) {
              const error = yield* Effect.flip(service.execute(W, new Add({ id, n: 1 })))
              assert(error._tag === "UnstorableValue")
              assert.strictEqual(error.subject, "workflow id")
            }
            const sql = yield* SqlClient.SqlClient
            const rows = yield* sql<{ n: number }>`
              SELECT count(*)::int AS n FROM ironflow.workflow_instances WHERE workflow_type = ${type}`
            assert.strictEqual(rows[0].n, 0)
            // A well-formed pair is fine.
            const ok = yield* service.execute(W, new Add({ id: "emoji \uD83D\uDE00", n: 1 }))
            assert.strictEqual(ok._tag, "Accepted")
          }))

        it.effect("JSON nested 10,000 deep is refused before encoding, and an infinite timer delay at decide time", () =>
          Effect.gen(function*() {
            const type = uniqueType("deep")
            const W = makeProbe(type)
            const service = yield* makeService([W.handler(() => Effect.succeedNone)])
            const deep = yield* Effect.flip(service.execute(W, new Carry({ id: "d", value: deepValue(10_000) })))
            assert(deep._tag === "UnstorableValue")
            assert.include(deep.message, "nested deeper")
            const dynamic = yield* Effect.flip(
              service.executeDynamic(type, { type: "Carry", id: "d", value: deepValue(10_000) })
            )
            assert.strictEqual(dynamic._tag, "UnstorableValue")
            const moderate = yield* service.execute(W, new Carry({ id: "d", value: deepValue(100) }))
            assert.strictEqual(moderate._tag, "Accepted")
            const never = yield* Effect.flip(service.execute(W, new Later({ id: "d", millis: Infinity })))
            assert(never._tag === "UnstorableValue")
            assert.strictEqual(never.subject, "timer delay")
            const far = yield* Effect.flip(service.execute(W, new Later({ id: "d", millis: 1e300 })))
            assert.strictEqual(far._tag, "UnstorableValue")
            assert.strictEqual(yield* countEvents(type, "d"), 1)
          }))

        it.effect("concurrent executes share groups and keep per-instance order", () =>
          Effect.gen(function*() {
            const type = uniqueType("shared")
            const W = makeProbe(type)
            const service = yield* makeService([W.handler(() => Effect.succeedNone)])
            const outcomes = yield* Effect.forEach(
              Array.from({ length: 200 }, (_, i) => i),
              (i) => service.execute(W, new Add({ id: `s-${i % 5}`, n: i % 7 === 0 ? -1 : 1 })),
              { concurrency: "unbounded" }
            )
            const accepted = outcomes.filter((o) => o._tag === "Accepted").length
            assert.strictEqual(outcomes.filter(ExecuteOutcome.isRejected).length, 200 - accepted)
            let total = 0
            for (let i = 0; i < 5; i++) total += (yield* service.fetchLatestState(W, `s-${i}`)).total
            assert.strictEqual(total, accepted)
          }))
      })
    }
  )
