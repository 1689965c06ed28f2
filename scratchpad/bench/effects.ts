/**
 * Scenario 1 (and 7, with `--embedded`): effect throughput. `--n` effects are
 * queued directly in `ironflow.outbox` with one INSERT ... SELECT after the
 * migrations ran; then the runtime starts and the clock runs from its start
 * to the last handler call (a no-op returning none). The acks are awaited
 * too, for correctness. Prints effects/s and the peak RSS of this process, its
 * RSS before the database opened and after the runtime and the database were
 * closed (after a forced GC when node runs with `--expose-gc`).
 *
 * `--store memory` is a diagnostic: the same runtime, but the effect claims
 * are served from an in-memory array and the acks are counted, not written
 * (every other store call goes to the database). It measures what the
 * process spends per effect outside the database.
 *
 *   node --import tsx scratchpad/bench/effects.ts --db postgres://... --n 20000 --config '{"effectWorkers":1,...}'
 */
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Option } from "effect"
import { PgWorkflowStore, RuntimeConfig, WorkflowRegistry, WorkflowRuntime, WorkflowStore } from "ironflow"
import { randomUUID } from "node:crypto"
import { EffectsWorkflow, workPayloadSql } from "./BenchWorkflows.js"
import {
  args,
  backend,
  databaseLayer,
  describeConfig,
  emit,
  makeCounter,
  mb,
  progress,
  round,
  rssAfterGc,
  rssSampler,
  runChild,
  runtimeOptions,
  waitUntil
} from "./common.js"

const n = args.number("n", 20_000)
const config = args.config()
const { embedded } = backend()
const inMemory = args.string("store", "database") === "memory"
const label = inMemory ? "effects (in-memory claims)" : embedded ? "effects (embedded)" : "effects"

/** The store with effect claims served from memory and effect acks counted (diagnostic). */
const withMemoryQueue = (store: WorkflowStore.WorkflowStore["Type"]) => {
  const createdAt = new Date(Date.now() - 60_000)
  const items: Array<WorkflowStore.ClaimedItem> = Array.from({ length: n }, (_, i) => ({
    kind: "effect",
    id: randomUUID(),
    workflowType: EffectsWorkflow.type,
    workflowId: `w-${i}`,
    payload: { type: "Work", id: `w-${i}` },
    attempts: 0,
    createdAt,
    dueAt: createdAt,
    lockedBy: ""
  }))
  let next = 0
  let acked = 0
  const memoryStore: WorkflowStore.WorkflowStore["Type"] = {
    ...store,
    claim: (request) =>
      request.kind === "effect"
        ? Effect.sync(() => {
          const batch = items.slice(next, next + request.limit).map((item) => ({ ...item, lockedBy: request.workerId }))
          next += batch.length
          return batch
        })
        : store.claim(request),
    // A worker's acks are a group transaction; those of memory rows are counted, never written.
    transactGroup: (request, body) =>
      request.fence?.kind === "effect" && request.instances.length === 0
        ? Effect.map(
          body({ now: Date.now(), instances: [], fenced: new Set(request.fence.ids) }),
          ({ value, writes }) => {
            acked += writes.settlements?.completed.length ?? 0
            return value
          }
        )
        : store.transactGroup(request, body)
  }
  return { store: memoryStore, pending: Effect.sync(() => n - acked) }
}

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const databaseStore = yield* WorkflowStore.WorkflowStore
  const rss = yield* rssSampler
  const openedRss = process.memoryUsage().rss // the database is open and migrated

  const { pending, store } = inMemory ? withMemoryQueue(databaseStore) : {
    store: databaseStore,
    pending: sql<{ n: number }>`SELECT count(*)::int AS n FROM ironflow.outbox WHERE processed_at IS NULL`.pipe(
      Effect.map((rows) => rows[0].n)
    )
  }
  if (!inMemory) {
    yield* sql.unsafe(`
      INSERT INTO ironflow.outbox (id, workflow_type, workflow_id, payload, created_at)
      SELECT gen_random_uuid(), '${EffectsWorkflow.type}', 'w-' || g, ${workPayloadSql}, now() - interval '1 minute'
      FROM generate_series(1, ${n}) AS g`)
  }
  yield* progress(label, `queued ${n} effects; starting the runtime (${describeConfig(config)})`)

  const handled = yield* makeCounter(n)
  const handler = EffectsWorkflow.handler(() => Effect.sync(() => (handled.hit(), Option.none())))
  const runtime = WorkflowRuntime.layer.pipe(
    Layer.provide(WorkflowRegistry.layer([handler])),
    Layer.provide(RuntimeConfig.layer(runtimeOptions(config))),
    Layer.provide(Layer.succeed(WorkflowStore.WorkflowStore, store))
  )

  const result = yield* Effect.scoped(Effect.gen(function*() {
    const started = performance.now()
    yield* Layer.build(runtime)
    const lastHandled = yield* handled.reached
    yield* waitUntil(Effect.map(pending, (left) => left === 0), "5 millis")
    const acked = performance.now()
    return { handledMs: lastHandled - started, ackedMs: acked - started }
  }))
  const peak = yield* rss.peak
  const seconds = result.handledMs / 1000
  yield* progress(
    label,
    `${n} handler calls in ${round(result.handledMs, 1)} ms, acked after ${round(result.ackedMs, 1)} ms`
  )
  return {
    n,
    config,
    store: inMemory ? "memory" : "database",
    effects_per_s: round(n / seconds, 0),
    handled_ms: round(result.handledMs, 1),
    acked_ms: round(result.ackedMs, 1),
    effects_acked_per_s: round(n / (result.ackedMs / 1000), 0),
    handler_calls: handled.count(),
    opened_rss_mb: mb(openedRss),
    peak_rss_mb: mb(peak)
  }
})

// RSS with the modules loaded, before the database opens; and once the runtime and the database are closed.
const startRss = process.memoryUsage().rss

runChild(Effect.gen(function*() {
  const figures = yield* program.pipe(
    Effect.scoped,
    Effect.provide(PgWorkflowStore.layer),
    Effect.provide(databaseLayer(config.maxConnections))
  )
  const afterClose = yield* rssAfterGc
  yield* emit({ ...figures, start_rss_mb: mb(startRss), rss_after_close_mb: mb(afterClose) })
}))
