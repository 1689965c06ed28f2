/**
 * Scenario 5: execute latency against history length. One instance is built
 * with `--short` events and one with `--long` events, through real executes
 * (one event each, so the service stores its snapshots every 100 events as
 * configured by default); then `--samples` executes on each, interleaved,
 * are timed. Prints the medians (and p90s).
 *
 *   node --import tsx scratchpad/bench/history.ts --db postgres://... --short 10 --long 10000 --samples 100
 */
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { PgWorkflowStore, WorkflowRegistry, WorkflowService } from "ironflow"
import { Append, HistoryWorkflow } from "./BenchWorkflows.js"
import { args, databaseLayer, emit, median, percentile, progress, round, runChild } from "./common.js"

const short = args.number("short", 10)
const long = args.number("long", 10_000)
const samples = args.number("samples", 100)

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const service = yield* WorkflowService.WorkflowService
  const append = (id: string) => service.execute(HistoryWorkflow, new Append({ id }))

  yield* progress("history", `building instances of ${short} and ${long} events through executes`)
  const built = performance.now()
  yield* Effect.repeatN(append("short"), short - 1)
  yield* Effect.repeatN(append("long"), long - 1)
  yield* progress("history", `built in ${round((performance.now() - built) / 1000, 1)} s`)
  const snapshots = yield* sql<{ workflow_id: string; event_count: number; snapshot_sequence: number | null }>`
    SELECT workflow_id, event_count::int AS event_count, snapshot_sequence::int AS snapshot_sequence
    FROM ironflow.workflow_instances WHERE workflow_type = ${HistoryWorkflow.type} ORDER BY workflow_id`

  const timed = (id: string) =>
    Effect.gen(function*() {
      const started = performance.now()
      yield* append(id)
      return performance.now() - started
    })
  const shortTimes: Array<number> = []
  const longTimes: Array<number> = []
  for (let i = 0; i < samples; i++) {
    shortTimes.push(yield* timed("short"))
    longTimes.push(yield* timed("long"))
  }
  yield* progress(
    "history",
    `execute median: ${round(median(shortTimes), 3)} ms at ${short} events, ${
      round(median(longTimes), 3)
    } ms at ${long} events`
  )
  yield* emit({
    short_events: short,
    long_events: long,
    samples,
    history_10_ms: round(median(shortTimes), 3),
    history_10000_ms: round(median(longTimes), 3),
    history_short_p90_ms: round(percentile(shortTimes, 90), 3),
    history_long_p90_ms: round(percentile(longTimes, 90), 3),
    history_ratio: round(median(longTimes) / median(shortTimes), 3),
    instances_before_timing: snapshots
  })
})

runChild(
  program.pipe(
    Effect.provide(WorkflowService.layer.pipe(
      Layer.provide(WorkflowRegistry.layer([HistoryWorkflow])),
      Layer.provide(PgWorkflowStore.layer),
      Layer.provideMerge(databaseLayer(10))
    ))
  )
)
