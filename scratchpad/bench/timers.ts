/**
 * Scenario 4: timer lateness. `--n` workflows each schedule one timer, due
 * at spread times (`--spreadMs` apart from each other, the first one
 * `--leadMs` after the start); the decision of each timer's input records
 * `now - due` (its `now` is the Clock time of the execute the timer worker
 * runs). Prints p50/p99/max lateness. With `--topology split` the timers
 * are scheduled through a separate service (own connections and store, no
 * workers), so only the database can tell the timer worker about them.
 *
 *   node --import tsx scratchpad/bench/timers.ts --db postgres://... --n 200 --config '{...}'
 */
import { SqlClient } from "@effect/sql"
import { Clock, Effect, Layer } from "effect"
import { PgWorkflowStore, RuntimeConfig, WorkflowRegistry, WorkflowRuntime, WorkflowService } from "ironflow"
import { makeTimerWorkflow, ScheduleFire } from "./BenchWorkflows.js"
import {
  args,
  databaseLayer,
  describeConfig,
  emit,
  makeCounter,
  median,
  percentile,
  progress,
  round,
  runChild,
  runtimeOptions,
  separateService,
  topology,
  waitUntil
} from "./common.js"

const n = args.number("n", 200)
const spreadMs = args.number("spreadMs", 20)
const leadMs = args.number("leadMs", 1_500)
const config = args.config()
const split = topology() === "split"
const label = split ? "timers (split)" : "timers"

const lateness: Array<number> = []
let onFire = (_latenessMs: number): void => {}
const TimerWorkflow = makeTimerWorkflow((latenessMs) => onFire(latenessMs))

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const service = split
    ? yield* separateService([TimerWorkflow], config.maxConnections)
    : yield* WorkflowService.WorkflowService
  const fired = yield* makeCounter(n)
  onFire = (latenessMs) => {
    lateness.push(latenessMs)
    fired.hit()
  }
  const base = (yield* Clock.currentTimeMillis) + leadMs
  yield* progress(
    label,
    `${n} timers due ${spreadMs} ms apart from ${leadMs} ms on (${describeConfig(config)})`
  )
  yield* Effect.forEach(
    Array.from({ length: n }, (_, i) => i),
    (i) => service.execute(TimerWorkflow, new ScheduleFire({ id: `timer-${i}`, dueAt: base + i * spreadMs })),
    { concurrency: 8, discard: true }
  )
  const scheduled = (yield* Clock.currentTimeMillis) - base + leadMs
  yield* fired.reached.pipe(Effect.timeout("60 seconds"))
  // The timer inputs' transactions commit after their decisions: wait for them before stopping.
  yield* waitUntil(
    sql<{ n: number }>`SELECT count(*)::int AS n FROM ironflow.timers WHERE processed_at IS NULL`.pipe(
      Effect.map((rows) => rows[0].n === 0)
    )
  )
  const p50 = median(lateness)
  const p99 = percentile(lateness, 99)
  yield* progress(label, `lateness p50 ${p50} ms, p99 ${p99} ms, max ${Math.max(...lateness)} ms`)
  yield* emit({
    n,
    spread_ms: spreadMs,
    config,
    topology: split ? "split" : "same",
    scheduling_ms: round(scheduled, 1),
    timer_lateness_p50_ms: p50,
    timer_lateness_p99_ms: p99,
    timer_lateness_max_ms: Math.max(...lateness),
    timer_lateness_min_ms: Math.min(...lateness),
    early_timers: lateness.filter((l) => l < 0).length
  })
})

runChild(
  program.pipe(
    Effect.scoped,
    Effect.provide(WorkflowRuntime.layer.pipe(
      Layer.provide(WorkflowRegistry.layer([TimerWorkflow])),
      Layer.provide(RuntimeConfig.layer(runtimeOptions(config))),
      Layer.provide(PgWorkflowStore.layer),
      Layer.provideMerge(databaseLayer(config.maxConnections))
    ))
  )
)
