/**
 * Priorities, and concurrency and rate limits per key (issue #14 items 2 and
 * 3), run against `PgWorkflowStore` over real PostgreSQL or the embedded
 * PGlite.
 *
 * Time is the TestClock: leases, rate windows and the periodic release of
 * waiting rows move only when a test adjusts it, while the workers look at the
 * database on real time.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option, Ref, Schema, TestClock } from "effect"
import { Decision, ExecuteOutcome, PgWorkflowStore, Timer, Workflow, WorkflowStore } from "ironflow"
import { assertBackend } from "../support/database.js"
import { awaitCondition, liveSleep, serviceFor, startRuntime, uniqueType } from "../support/runtimeHarness.js"

class Call extends Schema.Class<Call>("Limits/Call")({
  key: Schema.String,
  n: Schema.Number,
  priority: Schema.optional(Schema.Number)
}) {}
class Submit extends Schema.TaggedClass<Submit>("Limits/Submit")("Submit", {
  id: Schema.String,
  calls: Schema.Array(Call),
  timerPriorities: Schema.optional(Schema.Array(Schema.Number))
}) {}
class Tick extends Schema.TaggedClass<Tick>("Limits/Tick")("Tick", { id: Schema.String, n: Schema.Number }) {}
class Submitted extends Schema.TaggedClass<Submitted>("Limits/Submitted")("Submitted", {}) {}
class Ticked extends Schema.TaggedClass<Ticked>("Limits/Ticked")("Ticked", {}) {}

const makeWorkflow = (type: string) =>
  Workflow.make({
    type,
    state: Schema.Struct({}),
    input: Schema.Union(Submit, Tick),
    event: Schema.Union(Submitted, Ticked),
    effect: Call,
    initialState: {},
    workflowId: { field: "id" },
    evolve: (state) => state,
    decide: (_now, _state, input) => {
      if (input._tag === "Tick") return Decision.accept(new Ticked())
      let decision: Decision.Decision<Submitted | Ticked, Call, Tick> = Decision.accept(new Submitted())
      for (const call of input.calls) {
        decision = Decision.withEffect(decision, call, { priority: call.priority })
      }
      const timers = (input.timerPriorities ?? []).map((priority, n) =>
        Timer.withPriority(Timer.after("1 second", new Tick({ id: input.id, n })), priority)
      )
      return Decision.withTimers(decision, timers)
    }
  })

const calls = (key: string, count: number, from = 0) =>
  Array.from({ length: count }, (_, i) => new Call({ key, n: from + i }))

/** The outbox rows of a type: priority, limit columns and whether processed. */
const outboxOf = (workflowType: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<Record<string, unknown>>`
      SELECT id, payload, priority, limit_key, rate_key, awaiting_slot, processed_at
      FROM ironflow.outbox WHERE workflow_type = ${workflowType} ORDER BY created_at, id`
    return rows.map((row) => ({
      id: String(row.id),
      n: Number((row.payload as { n: number }).n),
      priority: Number(row.priority),
      limitKey: row.limit_key === null ? null : String(row.limit_key),
      rateKey: row.rate_key === null ? null : String(row.rate_key),
      parked: row.awaiting_slot === true,
      processed: row.processed_at !== null
    }))
  })

const processedCount = (workflowType: string) =>
  Effect.map(outboxOf(workflowType), (rows) => rows.filter((row) => row.processed).length)

/** Counts runs per key: running now, the most seen at once, and how many started. */
const makeTally = Effect.gen(function*() {
  const state = yield* Ref.make({
    running: new Map<string, number>(),
    peak: new Map<string, number>(),
    started: new Map<string, number>()
  })
  const enter = (key: string) =>
    Ref.update(state, (s) => {
      const running = (s.running.get(key) ?? 0) + 1
      s.running.set(key, running)
      s.peak.set(key, Math.max(s.peak.get(key) ?? 0, running))
      s.started.set(key, (s.started.get(key) ?? 0) + 1)
      return s
    })
  const exit = (key: string) =>
    Ref.update(state, (s) => {
      s.running.set(key, (s.running.get(key) ?? 1) - 1)
      return s
    })
  const read = (map: "running" | "peak" | "started", key: string) =>
    Effect.map(Ref.get(state), (s) => s[map].get(key) ?? 0)
  return { enter, exit, read }
})

export const suite = (label: string, database: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  it.layer(PgWorkflowStore.layer.pipe(Layer.provideMerge(database)), { timeout: "120 seconds" })(
    `Priorities, concurrency and rate limits (${label})`,
    (it) => {
      it.effect(`runs on ${label}: the database says so, and another connection sees the writes`, () =>
        assertBackend(label))

      describe("priorities", () => {
        it.effect("ready effects are claimed by priority, then in creation order; the handler gives a default", () =>
          Effect.gen(function*() {
            const store = yield* WorkflowStore.WorkflowStore
            const type = uniqueType("prio")
            const workflow = makeWorkflow(type)
            // Without a priority of its own, an effect takes the handler's: 3 for key "h".
            const handler = workflow.handler(() => Effect.succeed(Option.none()), {
              priority: (effect) => (effect.key === "h" ? 3 : 0)
            })
            const service = yield* serviceFor([handler])
            const submitted = [
              new Call({ key: "a", n: 0 }),
              new Call({ key: "a", n: 1, priority: 5 }),
              new Call({ key: "a", n: 2, priority: -1 }),
              new Call({ key: "h", n: 3 }),
              new Call({ key: "a", n: 4, priority: 5 }),
              new Call({ key: "a", n: 5 })
            ]
            const outcome = yield* service.execute(workflow, new Submit({ id: "p-1", calls: submitted }))
            assert.isTrue(ExecuteOutcome.isAccepted(outcome))
            const stored = yield* outboxOf(type)
            assert.deepStrictEqual(stored.map((row) => row.priority), [0, 5, -1, 3, 5, 0])

            const first = yield* store.claim({
              kind: "effect",
              workerId: "w-prio",
              workflowTypes: [type],
              limit: 3,
              lease: Duration.seconds(30)
            })
            const rest = yield* store.claim({
              kind: "effect",
              workerId: "w-prio",
              workflowTypes: [type],
              limit: 10,
              lease: Duration.seconds(30)
            })
            const order = [...first, ...rest].map((item) => (item.payload as { n: number }).n)
            assert.deepStrictEqual(order, [1, 4, 3, 0, 5, 2])
          }))

        it.effect("due timers are claimed by priority, then by fire time; timers not due are not claimed", () =>
          Effect.gen(function*() {
            const store = yield* WorkflowStore.WorkflowStore
            const type = uniqueType("tprio")
            const workflow = makeWorkflow(type)
            const service = yield* serviceFor([workflow.handler(() => Effect.succeed(Option.none()))])
            yield* service.execute(workflow, new Submit({ id: "t-1", calls: [], timerPriorities: [0, 2] }))
            yield* TestClock.adjust("10 millis")
            yield* service.execute(workflow, new Submit({ id: "t-2", calls: [], timerPriorities: [7, 0] }))
            const claim = store.claim({
              kind: "timer",
              workerId: "w-tprio",
              workflowTypes: [type],
              limit: 10,
              lease: Duration.seconds(30)
            })
            assert.deepStrictEqual(yield* claim, [])
            yield* TestClock.adjust("2 seconds")
            const claimed = yield* claim
            assert.deepStrictEqual(
              claimed.map((item) => [item.workflowId, (item.payload as { n: number }).n, item.priority]),
              [["t-2", 0, 7], ["t-1", 1, 2], ["t-1", 0, 0], ["t-2", 1, 0]]
            )
          }))

        if (label === "postgres") {
          it.effect("the effect claim reads the claim index in order (no sort of the table)", () =>
            Effect.gen(function*() {
              const sql = yield* SqlClient.SqlClient
              yield* sql`SET enable_seqscan = off`
              const plan = yield* sql<{ "QUERY PLAN": string }>`
                EXPLAIN SELECT id FROM ironflow.outbox
                WHERE processed_at IS NULL AND dead_lettered_at IS NULL AND NOT awaiting_slot
                  AND (locked_until IS NULL OR locked_until <= now())
                  AND workflow_type = ANY(${["x"]}::text[])
                ORDER BY priority DESC, created_at, id LIMIT 10 FOR UPDATE SKIP LOCKED`
              yield* sql`SET enable_seqscan = on`
              const text = plan.map((row) => row["QUERY PLAN"]).join("\n")
              assert.include(text, "outbox_claim_idx")
              assert.notInclude(text, "Sort")
            }))
        }
      })

      describe("concurrency limits", () => {
        it.scoped("at most `limit` effects of one key run at once; other keys are not held up; parked rows wait", () =>
          Effect.gen(function*() {
            const type = uniqueType("conc")
            const workflow = makeWorkflow(type)
            const tally = yield* makeTally
            const gate = yield* Ref.make(false)
            const handler = workflow.handler(
              (effect) =>
                Effect.gen(function*() {
                  yield* tally.enter(effect.key)
                  // Held until the test opens the gate: the slots stay taken meanwhile.
                  while (!(yield* Ref.get(gate))) yield* liveSleep("10 millis")
                  yield* tally.exit(effect.key)
                  return Option.none()
                }),
              { concurrency: { key: (effect) => effect.key, limit: 2 } }
            )
            const running = yield* startRuntime([handler], { effectWorkers: 2, handlerConcurrency: 8 })
            yield* running.service.execute(
              workflow,
              new Submit({ id: "c-1", calls: [...calls("busy", 8), ...calls("free", 3, 100)] })
            )
            yield* awaitCondition(
              "two busy and three free effects running",
              Effect.map(
                Effect.all([tally.read("running", "busy"), tally.read("running", "free")]),
                ([busy, free]) => busy === 2 && free === 2
              )
            )
            // The limit is per key: "free" has a limit of 2 as well, and its third effect waits too.
            yield* liveSleep("300 millis")
            assert.strictEqual(yield* tally.read("peak", "busy"), 2)
            assert.strictEqual(yield* tally.read("peak", "free"), 2)
            const rows = yield* outboxOf(type)
            const busyName = `concurrency:${type}:busy`
            assert.isTrue(rows.filter((row) => row.limitKey === busyName).length === 8)
            // The six busy rows over the limit are parked (out of the claim index), not claimed again and again.
            assert.strictEqual(rows.filter((row) => row.limitKey === busyName && row.parked).length, 6)
            yield* Ref.set(gate, true)
            yield* awaitCondition("every effect processed", Effect.map(processedCount(type), (n) => n === 11))
            assert.strictEqual(yield* tally.read("peak", "busy"), 2)
            assert.strictEqual(yield* tally.read("started", "busy"), 8)
            const after = yield* outboxOf(type)
            assert.isTrue(after.every((row) => !row.parked))
          }))

        it.scoped("a dead worker's slots come back when its leases expire (TestClock)", () =>
          Effect.gen(function*() {
            const store = yield* WorkflowStore.WorkflowStore
            const type = uniqueType("crash")
            const workflow = makeWorkflow(type)
            const tally = yield* makeTally
            const handler = workflow.handler(
              (effect) => Effect.as(tally.enter(effect.key), Option.none()),
              { concurrency: { key: (effect) => effect.key, limit: 2 } }
            )
            const service = yield* serviceFor([handler])
            yield* service.execute(workflow, new Submit({ id: "k-1", calls: calls("acct", 5) }))
            // A worker that takes two slots and dies (it never settles nor extends its leases).
            const claimed = yield* store.claim({
              kind: "effect",
              workerId: "dead",
              workflowTypes: [type],
              limit: 2,
              lease: Duration.seconds(30)
            })
            const name = `concurrency:${type}:acct`
            const admitted = yield* store.admit(
              "dead",
              claimed.map((item) => ({ id: item.id, concurrency: { name, limit: 2 }, rate: undefined }))
            )
            assert.strictEqual(admitted.length, 2)
            yield* startRuntime([handler])
            yield* liveSleep("500 millis")
            assert.strictEqual(yield* tally.read("started", "acct"), 0)
            // The dead worker's leases run out: its slots are free, and all five run (its two rows again too).
            yield* TestClock.adjust("31 seconds")
            yield* awaitCondition("all processed", Effect.map(processedCount(type), (n) => n === 5), {
              advance: "1 second"
            })
            assert.strictEqual(yield* tally.read("started", "acct"), 5)
          }))

        it.effect("an admission over the limit parks the row and every other ready row of the key", () =>
          Effect.gen(function*() {
            const store = yield* WorkflowStore.WorkflowStore
            const type = uniqueType("park")
            const workflow = makeWorkflow(type)
            const handler = workflow.handler(() => Effect.succeed(Option.none()), {
              concurrency: { key: (effect) => effect.key, limit: 1 }
            })
            const service = yield* serviceFor([handler])
            yield* service.execute(
              workflow,
              new Submit({ id: "q-1", calls: [...calls("k", 50), ...calls("z", 1, 99)] })
            )
            const name = `concurrency:${type}:k`
            const claim = (limit: number) =>
              store.claim({
                kind: "effect",
                workerId: "w-park",
                workflowTypes: [type],
                limit,
                lease: Duration.seconds(30)
              })
            const first = yield* claim(2)
            const admitted = yield* store.admit(
              "w-park",
              first.map((item) => ({ id: item.id, concurrency: { name, limit: 1 }, rate: undefined }))
            )
            assert.strictEqual(admitted.length, 1)
            const rows = yield* outboxOf(type)
            assert.strictEqual(rows.filter((row) => row.parked).length, 49)
            // The next claim goes straight to the free row: the 49 waiting ones are not read.
            const next = yield* claim(10)
            assert.deepStrictEqual(next.map((item) => (item.payload as { n: number }).n), [99])
            // Nothing is released while the slot is held; once it is settled, one row comes back.
            assert.strictEqual(yield* store.releaseWaiting([name]), 0)
            yield* store.complete("effect", "w-park", admitted)
            assert.strictEqual(yield* store.releaseWaiting([name]), 1)
            const again = yield* claim(10)
            assert.deepStrictEqual(again.map((item) => (item.payload as { n: number }).n), [1])
          }))
      })

      describe("rate limits", () => {
        it.scoped("at most `limit` effects of a key start per window, on the Clock", () =>
          Effect.gen(function*() {
            const type = uniqueType("rate")
            const workflow = makeWorkflow(type)
            const tally = yield* makeTally
            const handler = workflow.handler(
              (effect) => Effect.as(tally.enter(effect.key), Option.none()),
              { rateLimit: { key: (effect) => effect.key, limit: 2, per: "10 seconds" } }
            )
            const running = yield* startRuntime([handler])
            yield* running.service.execute(
              workflow,
              new Submit({ id: "r-1", calls: [...calls("api", 5), ...calls("other", 1, 50)] })
            )
            yield* awaitCondition("two api calls and the other", Effect.map(processedCount(type), (n) => n === 3))
            yield* liveSleep("400 millis")
            assert.strictEqual(yield* tally.read("started", "api"), 2)
            yield* TestClock.adjust("5 seconds")
            yield* liveSleep("300 millis")
            assert.strictEqual(yield* tally.read("started", "api"), 2)
            yield* TestClock.adjust("5 seconds")
            yield* awaitCondition("two more", Effect.map(tally.read("started", "api"), (n) => n === 4))
            yield* liveSleep("300 millis")
            assert.strictEqual(yield* tally.read("started", "api"), 4)
            yield* TestClock.adjust("10 seconds")
            yield* awaitCondition("the last", Effect.map(tally.read("started", "api"), (n) => n === 5))
            // The handler's tally is written before its row is acknowledged: wait for the acks.
            yield* awaitCondition(
              "every row processed",
              Effect.map(outboxOf(type), (rows) => rows.every((row) => row.processed))
            )
            const rows = yield* outboxOf(type)
            assert.isTrue(rows.filter((row) => row.n < 50).every((row) => row.rateKey === `rate:${type}:api`))
          }))
      })
    }
  )
