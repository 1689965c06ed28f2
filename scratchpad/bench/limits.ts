/**
 * Scenarios 8 and 9 (issue #14): priorities and blocked keys.
 *
 * `--scenario priorities`: drains `--n` queued effects with every priority 0,
 * then `--n` with mixed priorities (0..9), alternating `--rounds` times on one
 * database; reports both rates and their ratio (mixed / plain).
 *
 * `--scenario blocked`: drains `--free` effects of an unlimited handler alone
 * (the unconstrained rate), then queues `--blocked` effects of one key of a
 * handler with `concurrency: { limit: 1 }` (its one slot held by a handler
 * that does not return while the scenario runs) ahead of `--free` more free
 * effects, and measures how fast the free ones drain behind the saturated key.
 *
 *   node --import tsx scratchpad/bench/limits.ts --db postgres://... --scenario blocked --free 50000 --blocked 100000
 */
import { SqlClient } from "@effect/sql"
import { Deferred, Effect, Layer, Option } from "effect"
import { PgWorkflowStore, RuntimeConfig, type Workflow, WorkflowRegistry, WorkflowRuntime } from "ironflow"
import { EffectsWorkflow, makeRoundTrip, workPayloadSql } from "./BenchWorkflows.js"
import {
  args,
  databaseLayer,
  emit,
  makeCounter,
  progress,
  round,
  runChild,
  runtimeOptions,
  waitUntil
} from "./common.js"

const scenario = args.string("scenario", "priorities")
const config = args.config()

// The limited workflow: the same effects, another type (its handler declares the limit).
const Limited = makeRoundTrip(() => {})

const pending = (workflowType: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ n: number }>`SELECT count(*)::int AS n FROM ironflow.outbox
      WHERE processed_at IS NULL AND workflow_type = ${workflowType}`.pipe(Effect.map((rows) => rows[0].n)))

const queue = (workflowType: string, n: number, priority: string, limitKey: string | null = null) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe(`
      INSERT INTO ironflow.outbox (id, workflow_type, workflow_id, payload, created_at, priority, limit_key)
      SELECT gen_random_uuid(), '${workflowType}', 'w-' || g, ${workPayloadSql}, now() - interval '1 minute',
        ${priority}, ${limitKey === null ? "NULL" : `'${limitKey}'`}
      FROM generate_series(1, ${n}) AS g`))

/** Runs the runtime over `registrations` until `target` handler calls; returns the milliseconds from its start. */
const drain = (
  handler: (counter: { hit: () => void }) => ReadonlyArray<Workflow.WorkflowHandler<Workflow.Any, never>>,
  target: number,
  beforeStop: Effect.Effect<void> = Effect.void
) =>
  Effect.scoped(Effect.gen(function*() {
    const counter = yield* makeCounter(target)
    const runtime = WorkflowRuntime.layer.pipe(
      Layer.provide(WorkflowRegistry.layer(handler(counter))),
      Layer.provide(RuntimeConfig.layer(runtimeOptions(config)))
    )
    const started = performance.now()
    yield* Layer.build(runtime)
    const last = yield* counter.reached
    yield* waitUntil(Effect.map(pending(EffectsWorkflow.type), (left) => left === 0), "5 millis")
    yield* beforeStop
    return last - started
  }))

const noop = (counter: { hit: () => void }) => [
  EffectsWorkflow.handler(() => Effect.sync(() => (counter.hit(), Option.none())))
]

const priorities = Effect.gen(function*() {
  const n = args.number("n", 20_000)
  const rounds = args.number("rounds", 2)
  const plain: Array<number> = []
  const mixed: Array<number> = []
  for (let r = 0; r < rounds; r++) {
    yield* queue(EffectsWorkflow.type, n, "0")
    plain.push(n / ((yield* drain(noop, n)) / 1000))
    yield* queue(EffectsWorkflow.type, n, "(g % 10)")
    mixed.push(n / ((yield* drain(noop, n)) / 1000))
    yield* progress("priorities", `round ${r + 1}: plain ${round(plain[r], 0)}/s, mixed ${round(mixed[r], 0)}/s`)
  }
  const mean = (xs: ReadonlyArray<number>) => xs.reduce((a, b) => a + b, 0) / xs.length
  return {
    n,
    rounds,
    plain_effects_per_s: round(mean(plain), 0),
    mixed_priorities_effects_per_s: round(mean(mixed), 0),
    mixed_over_plain: round(mean(mixed) / mean(plain), 3)
  }
})

const blocked = Effect.gen(function*() {
  const free = args.number("free", 50_000)
  const blockedCount = args.number("blocked", 100_000)
  yield* queue(EffectsWorkflow.type, free, "0")
  const alone = yield* drain(noop, free)
  yield* progress("blocked", `${free} free effects alone: ${round(free / (alone / 1000), 0)}/s`)

  // The saturated key's rows first (older), so every claim in creation order would meet them first.
  const limitName = `concurrency:${Limited.type}:hot`
  yield* queue(Limited.type, blockedCount, "0", limitName)
  yield* queue(EffectsWorkflow.type, free, "0")
  const hold = yield* Deferred.make<void>()
  const sql = yield* SqlClient.SqlClient
  let parked = 0
  const countParked = sql<{ n: number }>`SELECT count(*)::int AS n FROM ironflow.outbox
    WHERE workflow_type = ${Limited.type} AND awaiting_slot`.pipe(
    Effect.map((rows) => {
      parked = rows[0].n
    }),
    Effect.orDie
  )
  const behind = yield* drain(
    (counter) => [
      ...noop(counter),
      Limited.handler(() => Effect.as(Deferred.await(hold), Option.none()), {
        concurrency: { key: () => "hot", limit: 1 }
      })
    ],
    free,
    Effect.suspend(() => Effect.zipRight(countParked, Deferred.succeed(hold, undefined)))
  )
  yield* progress(
    "blocked",
    `${free} free effects behind ${blockedCount} blocked: ${round(free / (behind / 1000), 0)}/s`
  )
  return {
    free,
    blocked: blockedCount,
    free_alone_effects_per_s: round(free / (alone / 1000), 0),
    free_behind_blocked_effects_per_s: round(free / (behind / 1000), 0),
    behind_over_alone: round(alone / behind, 3),
    blocked_rows_parked: parked
  }
})

runChild(
  (scenario === "blocked" ? blocked : priorities).pipe(
    Effect.flatMap(emit),
    Effect.provide(PgWorkflowStore.layer),
    Effect.provide(databaseLayer(config.maxConnections))
  )
)
