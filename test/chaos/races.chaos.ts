/**
 * Races with real concurrency: every test runs two stacks on the same fresh
 * PostgreSQL database, each with its own connection pool (as two processes
 * would), on the live clock. The contract suites cover the single-pool
 * versions; the lease that expires while its handler runs is the
 * `lease-expiry` process scenario of scratchpad/chaos (SIGSTOP).
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Context, Duration, Effect, Either, Layer, Logger, LogLevel, Option, Schema } from "effect"
import {
  DeadLetters,
  Decision,
  ExecuteOutcome,
  PgWorkflowStore,
  RetryPolicy,
  TestRuntime,
  Workflow,
  WorkflowRegistry,
  WorkflowService,
  WorkflowStore
} from "ironflow"
import { ChaosDatabase, pgOn, report } from "./support.js"

// A counter whose inputs carry an operation id: an operation is applied at most once.
class Add extends Schema.TaggedClass<Add>()("Add", { id: Schema.String, op: Schema.String, amount: Schema.Number }) {}
class Added extends Schema.TaggedClass<Added>()("Added", { op: Schema.String, amount: Schema.Number }) {}
const Counter = Workflow.make({
  type: "race_counter",
  state: Schema.Struct({ total: Schema.Number, ops: Schema.Array(Schema.String) }),
  input: Add,
  event: Added,
  rejection: Schema.String,
  initialState: { total: 0, ops: [] },
  workflowId: { field: "id" },
  evolve: (state, event) => ({ total: state.total + event.amount, ops: [...state.ops, event.op] }),
  decide: (_now, state, input) =>
    state.ops.includes(input.op)
      ? Decision.reject(`operation ${input.op} already applied`)
      : Decision.accept(new Added({ op: input.op, amount: input.amount }))
})

// A cart: one open cart per customer (unique key), closed by Close.
class Open extends Schema.TaggedClass<Open>()("Open", { cartId: Schema.String, customer: Schema.String }) {}
class Close extends Schema.TaggedClass<Close>()("Close", { cartId: Schema.String }) {}
class Opened extends Schema.TaggedClass<Opened>()("Opened", { customer: Schema.String }) {}
class Closed extends Schema.TaggedClass<Closed>()("Closed", {}) {}
const Cart = Workflow.make({
  type: "race_cart",
  state: Schema.Struct({ open: Schema.Boolean, closed: Schema.Boolean }),
  input: Schema.Union(Open, Close),
  event: Schema.Union(Opened, Closed),
  rejection: Schema.String,
  initialState: { open: false, closed: false },
  workflowId: { field: "cartId" },
  evolve: (state, event) => (event._tag === "Opened" ? { ...state, open: true } : { ...state, closed: true }),
  decide: (_now, state, input) =>
    input._tag === "Open"
      ? (state.open ? Decision.reject("already open") : Decision.accept(new Opened({ customer: input.customer })))
      : Decision.accept(new Closed()),
  isTerminal: (state) => state.closed,
  uniqueKey: (input) => (input._tag === "Open" ? input.customer : undefined)
})

// A ticker whose timer is rescheduled, under the same key, by its own firing.
class Begin extends Schema.TaggedClass<Begin>()("Begin", { id: Schema.String, ticks: Schema.Number }) {}
class Tick extends Schema.TaggedClass<Tick>()("Tick", { id: Schema.String, seq: Schema.Number }) {}
class Begun extends Schema.TaggedClass<Begun>()("Begun", { ticks: Schema.Number }) {}
class Ticked extends Schema.TaggedClass<Ticked>()("Ticked", { seq: Schema.Number }) {}
const tickDelay = (seq: number) => Duration.millis((seq % 3) * 5)
const Ticker = Workflow.make({
  type: "race_ticker",
  state: Schema.Struct({ target: Schema.Number, ticks: Schema.Number }),
  input: Schema.Union(Begin, Tick),
  event: Schema.Union(Begun, Ticked),
  rejection: Schema.String,
  initialState: { target: 0, ticks: 0 },
  workflowId: { field: "id" },
  evolve: (state, event) =>
    event._tag === "Begun" ? { ...state, target: event.ticks } : { ...state, ticks: state.ticks + 1 },
  decide: (_now, state, input) => {
    if (input._tag === "Begin") {
      return state.target > 0
        ? Decision.reject("already begun")
        : Decision.accept(new Begun({ ticks: input.ticks })).pipe(
          Decision.withTimerAfter(tickDelay(1), new Tick({ id: input.id, seq: 1 }), { key: "tick" })
        )
    }
    if (input.seq !== state.ticks + 1) return Decision.reject(`stale tick ${input.seq} at ${state.ticks}`)
    const ticked = Decision.accept(new Ticked({ seq: input.seq }))
    return input.seq < state.target
      ? ticked.pipe(
        Decision.withTimerAfter(tickDelay(input.seq + 1), new Tick({ id: input.id, seq: input.seq + 1 }), {
          key: "tick"
        })
      )
      : ticked
  },
  isTerminal: (state) => state.target > 0 && state.ticks >= state.target
})

// Work whose handler fails while `broken` is set: dead letters, retried from both stacks at once.
class Submit extends Schema.TaggedClass<Submit>()("Submit", { id: Schema.String }) {}
class Done extends Schema.TaggedClass<Done>()("Done", { id: Schema.String }) {}
class Submitted extends Schema.TaggedClass<Submitted>()("Submitted", {}) {}
class Completed extends Schema.TaggedClass<Completed>()("Completed", {}) {}
class Work extends Schema.TaggedClass<Work>()("Work", { id: Schema.String }) {}
const Jobs = Workflow.make({
  type: "race_jobs",
  state: Schema.Struct({ submitted: Schema.Boolean, done: Schema.Boolean }),
  input: Schema.Union(Submit, Done),
  event: Schema.Union(Submitted, Completed),
  effect: Work,
  rejection: Schema.String,
  initialState: { submitted: false, done: false },
  workflowId: { field: "id" },
  evolve: (state, event) => (event._tag === "Submitted" ? { ...state, submitted: true } : { ...state, done: true }),
  decide: (_now, state, input) =>
    input._tag === "Submit"
      ? Decision.accept(new Submitted()).pipe(Decision.withEffect(new Work({ id: input.id })))
      : state.done
      ? Decision.reject("already done")
      : Decision.accept(new Completed()),
  isTerminal: (state) => state.done
})
let broken = true
const calls = new Map<string, number>()
const JobsHandler = Jobs.handler(
  (work) =>
    Effect.suspend(() => {
      calls.set(work.id, (calls.get(work.id) ?? 0) + 1)
      return broken
        ? Effect.fail(`downstream unavailable for ${work.id}`)
        : Effect.succeed(Option.some(new Done({ id: work.id })))
    }),
  { retryPolicy: RetryPolicy.make({ maxAttempts: 2, baseDelay: "20 millis", maxDelay: "20 millis" }) }
)

/** A WorkflowService (no workers) on its own pool. */
const serviceOn = (url: string) =>
  Layer.mergeAll(WorkflowService.layer, DeadLetters.layer).pipe(
    Layer.provide(WorkflowRegistry.layer([Counter, Cart, Ticker, JobsHandler])),
    Layer.provideMerge(PgWorkflowStore.layer),
    Layer.provideMerge(pgOn(url))
  )

/** A running runtime on its own pool. */
const runtimeOn = (url: string) =>
  TestRuntime.layer({
    handlers: [Counter, Cart, Ticker, JobsHandler],
    database: pgOn(url),
    config: {
      effectPollInterval: "20 millis",
      timerPollInterval: "50 millis",
      timerWorkers: 2,
      claimBatchSize: 4,
      handlerConcurrency: 4
    }
  })

const build = <A, E>(stack: Layer.Layer<A, E>) => Layer.build(stack)

layer(ChaosDatabase.layer.pipe(Layer.provide(Logger.minimumLogLevel(LogLevel.Error))), {
  excludeTestServices: true,
  timeout: "120 seconds"
})("races", (it) => {
  describe("executes", () => {
    it.scoped("concurrent executes on one instance from two pools: every operation once, sequences 1..n", () =>
      Effect.gen(function*() {
        const { url } = yield* ChaosDatabase
        const a = Context.get(yield* build(serviceOn(url)), WorkflowService.WorkflowService)
        const b = Context.get(yield* build(serviceOn(url)), WorkflowService.WorkflowService)
        const ops = Array.from({ length: 200 }, (_, i) => ({ op: `op-${i}`, amount: i + 1 }))
        // Every operation once, a quarter of them delivered a second time, all at once in a shuffled order.
        const deliveries = [...ops, ...ops.filter((_, i) => i % 4 === 0)].map((op) => ({ op, key: Math.random() }))
          .sort((x, y) => x.key - y.key)
          .map(({ op }) => op)
        const outcomes = yield* Effect.forEach(
          deliveries,
          (op, i) => (i % 2 === 0 ? a : b).execute(Counter, new Add({ id: "counter-1", ...op })),
          { concurrency: 32 }
        )
        const accepted = outcomes.filter(ExecuteOutcome.isAccepted).length
        const rejected = outcomes.filter(ExecuteOutcome.isRejected).length
        const sql = Context.get(yield* build(pgOn(url)), SqlClient.SqlClient)
        const rows = yield* sql<{ seq: string; op: string }>`
          SELECT sequence::text AS seq, payload->>'op' AS op FROM ironflow.events
          WHERE workflow_type = 'race_counter' AND workflow_id = 'counter-1' ORDER BY sequence`
        const state = yield* a.fetchLatestState(Counter, "counter-1")
        assert.strictEqual(accepted, ops.length)
        assert.strictEqual(rejected, deliveries.length - ops.length)
        assert.deepStrictEqual(rows.map((r) => Number(r.seq)), ops.map((_, i) => i + 1))
        assert.strictEqual(new Set(rows.map((r) => r.op)).size, ops.length)
        assert.strictEqual(state.total, ops.reduce((sum, op) => sum + op.amount, 0))
        yield* report("races.concurrentExecutes", {
          executes: deliveries.length,
          accepted,
          rejectedDuplicates: rejected,
          events: rows.length,
          sequenceGaps: 0
        })
      }))

    it.scoped("concurrent unique-key starts from two pools: exactly one winner, a clean conflict for the rest", () =>
      Effect.gen(function*() {
        const { url } = yield* ChaosDatabase
        const a = Context.get(yield* build(serviceOn(url)), WorkflowService.WorkflowService)
        const b = Context.get(yield* build(serviceOn(url)), WorkflowService.WorkflowService)
        const round = (name: string, count: number) =>
          Effect.forEach(
            Array.from({ length: count }, (_, i) => `${name}-cart-${i}`),
            (cartId, i) =>
              Effect.either((i % 2 === 0 ? a : b).execute(Cart, new Open({ cartId, customer: "alice" }))).pipe(
                Effect.map((result) => ({ cartId, result }))
              ),
            { concurrency: "unbounded" }
          )
        const first = yield* round("r1", 40)
        const winners = first.filter((r) => Either.isRight(r.result) && ExecuteOutcome.isAccepted(r.result.right))
        const conflicts = first.filter((r) => Either.isLeft(r.result) && r.result.left._tag === "UniqueKeyConflict")
        assert.strictEqual(winners.length, 1)
        assert.strictEqual(conflicts.length, 39)
        const sql = Context.get(yield* build(pgOn(url)), SqlClient.SqlClient)
        const [active] = yield* sql<{ n: string }>`
          SELECT count(*)::text AS n FROM ironflow.workflow_instances WHERE workflow_type = 'race_cart'`
        assert.strictEqual(Number(active.n), 1, "losers leave no instance row")
        // Once the winner is closed the key is free again: one winner among the next racers.
        yield* a.execute(Cart, new Close({ cartId: winners[0].cartId }))
        const second = yield* round("r2", 20)
        const secondWinners = second.filter((r) =>
          Either.isRight(r.result) && ExecuteOutcome.isAccepted(r.result.right)
        )
        assert.strictEqual(secondWinners.length, 1)
        assert.strictEqual(second.filter((r) => Either.isLeft(r.result)).length, 19)
        yield* report("races.uniqueKeyStarts", {
          racers: 60,
          winners: winners.length + secondWinners.length,
          uniqueKeyConflicts: conflicts.length + 19,
          otherErrors: first.length - winners.length - conflicts.length
        })
      }))
  })

  describe("timers and dead letters under two runtimes", () => {
    it.scoped("a keyed timer rescheduled by its own firing fires exactly once per schedule, never lost", () =>
      Effect.gen(function*() {
        const { url } = yield* ChaosDatabase
        const a = yield* build(runtimeOn(url))
        const b = yield* build(runtimeOn(url))
        const service = Context.get(a, WorkflowService.WorkflowService)
        const sql = Context.get(yield* build(pgOn(url)), SqlClient.SqlClient)
        // Every time a ticker's timer row is marked processed: which firing its input holds, and which
        // firings the instance had applied at that moment. A row acked before its firing ran is premature:
        // a crash (or a shutdown releasing unstarted rows) in between loses that firing forever.
        yield* sql.unsafe(`
          CREATE TABLE chaos_timer_acks (workflow_id text, seq int, fired int, at timestamptz DEFAULT clock_timestamp());
          CREATE FUNCTION chaos_log_timer_ack() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            INSERT INTO chaos_timer_acks (workflow_id, seq, fired)
            SELECT NEW.workflow_id, (NEW.input->>'seq')::int, coalesce((SELECT max((payload->>'seq')::int)
              FROM ironflow.events WHERE workflow_type = NEW.workflow_type AND workflow_id = NEW.workflow_id
                AND payload->>'type' = 'Ticked'), 0);
            RETURN NEW;
          END $$;
          -- Deferred to commit: a firing's ack and its Ticked event commit in one transaction (the ack is
          -- written first inside it), so the check must look at what the transaction committed.
          CREATE CONSTRAINT TRIGGER chaos_timer_acks AFTER UPDATE ON ironflow.timers
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
            WHEN (OLD.processed_at IS NULL AND NEW.processed_at IS NOT NULL AND NEW.workflow_type = 'race_ticker')
            EXECUTE FUNCTION chaos_log_timer_ack();`)
        const ids = Array.from({ length: 60 }, (_, i) => `ticker-${i}`)
        const ticks = 10
        yield* Effect.forEach(ids, (id) => service.execute(Ticker, new Begin({ id, ticks })), { concurrency: 8 })
        yield* Effect.forEach(
          ids,
          (id) => TestRuntime.awaitTerminal(Ticker, id, { timeout: "60 seconds" }),
          { discard: true }
        ).pipe(Effect.provide(b))
        // The ack of each instance's last firing lands just after it completed.
        yield* TestRuntime.awaitCondition(
          Effect.map(
            sql<{ n: string }>`SELECT count(*)::text AS n FROM ironflow.timers
              WHERE workflow_type = 'race_ticker' AND processed_at IS NULL`,
            ([row]) => Number(row.n) === 0
          ),
          { timeout: "10 seconds", description: "every ticker timer to be acked" }
        ).pipe(Effect.ignore)
        const rows = yield* sql<{ workflow_id: string; seqs: Array<number> }>`
          SELECT workflow_id, array_agg((payload->>'seq')::int ORDER BY sequence) AS seqs
          FROM ironflow.events WHERE workflow_type = 'race_ticker' AND payload->>'type' = 'Ticked'
          GROUP BY workflow_id`
        const [timers] = yield* sql<{ total: string; pending: string; rows_per_instance: string }>`
          SELECT count(*)::text AS total, count(*) FILTER (WHERE processed_at IS NULL)::text AS pending,
            max(n)::text AS rows_per_instance
          FROM ironflow.timers t
          JOIN (SELECT workflow_id, count(*) AS n FROM ironflow.timers WHERE workflow_type = 'race_ticker'
            GROUP BY workflow_id) c USING (workflow_id)
          WHERE t.workflow_type = 'race_ticker'`
        const premature = yield* sql<{ workflow_id: string; seq: number; fired: number }>`
          SELECT workflow_id, seq, fired FROM chaos_timer_acks WHERE seq > fired ORDER BY at`
        yield* report("races.timerRescheduledByItsFiring", {
          instances: ids.length,
          ticksPerInstance: ticks,
          firings: rows.reduce((sum, r) => sum + r.seqs.length, 0),
          timerRows: Number(timers.total),
          timerRowsPerInstance: Number(timers.rows_per_instance),
          pendingTimers: Number(timers.pending),
          timerRowsAckedBeforeTheirFiring: premature.length
        })
        assert.strictEqual(rows.length, ids.length)
        for (const row of rows) assert.deepStrictEqual(row.seqs, Array.from({ length: ticks }, (_, i) => i + 1))
        assert.strictEqual(Number(timers.pending), 0)
        assert.deepStrictEqual(
          premature,
          [],
          "a rescheduled timer row was marked processed before its new firing ran (a stale ack of the same worker)"
        )
      }))

    it.scoped("a dead letter retried from two stacks at once while the other runtime works runs exactly once more", () =>
      Effect.gen(function*() {
        const { url } = yield* ChaosDatabase
        const a = yield* build(runtimeOn(url))
        const b = yield* build(runtimeOn(url))
        const service = Context.get(a, WorkflowService.WorkflowService)
        const lettersA = Context.get(a, DeadLetters.DeadLetters)
        const lettersB = Context.get(b, DeadLetters.DeadLetters)
        const ids = Array.from({ length: 20 }, (_, i) => `job-${i}`)
        broken = true
        yield* Effect.forEach(ids, (id) => service.execute(Jobs, new Submit({ id })), { discard: true })
        const dead = yield* TestRuntime.awaitDeadLetters(
          { workflowType: "race_jobs", count: ids.length },
          { timeout: "30 seconds" }
        ).pipe(Effect.provide(a))
        assert.strictEqual(dead.length, ids.length)
        for (const letter of dead) {
          assert.include(Option.getOrElse(letter.lastError, () => ""), "downstream unavailable")
        }
        const callsBefore = new Map(calls)
        broken = false
        // Four concurrent retries of every letter, from both runtimes, while both keep working.
        const results = yield* Effect.forEach(
          dead.flatMap((letter) => [lettersA, lettersB, lettersA, lettersB].map((letters) => letters.retry(letter.id))),
          (retry) => retry,
          { concurrency: "unbounded" }
        )
        const granted = results.filter((r) => r).length
        yield* Effect.forEach(
          ids,
          (id) => TestRuntime.awaitTerminal(Jobs, id, { timeout: "30 seconds" }),
          { discard: true }
        ).pipe(Effect.provide(a))
        const reruns = ids.map((id) => (calls.get(id) ?? 0) - (callsBefore.get(id) ?? 0))
        const store = Context.get(a, WorkflowStore.WorkflowStore)
        assert.strictEqual(granted, ids.length, "exactly one retry of each letter is granted")
        assert.deepStrictEqual(reruns, ids.map(() => 1), "each retried letter runs exactly once more")
        assert.strictEqual(yield* store.countDeadLetters("effect", { workflowType: "race_jobs" }), 0)
        yield* report("races.deadLetterRetriedConcurrently", {
          deadLetters: dead.length,
          retryCalls: results.length,
          retriesGranted: granted,
          retriesRefused: results.length - granted,
          handlerRunsAfterRetry: reruns.reduce((s, n) => s + n, 0)
        })
      }))
  })
})
