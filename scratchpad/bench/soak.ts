/**
 * Scenario 6 (second half): RSS growth under steady load. Round-trip
 * workflows are started at `--rate` per second for `--seconds`; the RSS after
 * `--warmupSeconds` (after a forced GC when run with `--expose-gc`) is the
 * baseline, and the growth is the RSS at the end (after a GC) minus it.
 *
 *   node --expose-gc --import tsx scratchpad/bench/soak.ts --db postgres://... --rate 200 --seconds 60
 */
import { SqlClient } from "@effect/sql"
import { Effect, Fiber, Layer, Option, Schedule, Stream } from "effect"
import { PgWorkflowStore, RuntimeConfig, WorkflowRegistry, WorkflowRuntime, WorkflowService } from "ironflow"
import { Finish, makeRoundTrip, Start } from "./BenchWorkflows.js"
import { args, databaseLayer, describeConfig, emit, mb, progress, round, runChild, runtimeOptions } from "./common.js"

const rate = args.number("rate", 200)
const seconds = args.number("seconds", 60)
const warmupSeconds = args.number("warmupSeconds", Math.min(10, seconds / 4))
const config = args.config()

const RoundTrip = makeRoundTrip(() => {})
const RoundTripHandler = RoundTrip.handler((work) => Effect.succeed(Option.some(new Finish({ id: work.id }))))

const gc = Effect.sync(() => {
  const collect = (globalThis as { gc?: () => void }).gc
  if (collect !== undefined) {
    collect()
    collect()
  }
  return collect !== undefined
})

const rss = Effect.sync(() => process.memoryUsage().rss)

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const service = yield* WorkflowService.WorkflowService
  const completed = sql<{ n: number }>`
    SELECT count(*)::int AS n FROM ironflow.workflow_instances
    WHERE workflow_type = ${RoundTrip.type} AND completed_at IS NOT NULL`.pipe(Effect.map((rows) => rows[0].n))

  yield* progress(
    "soak",
    `${rate} workflows/s for ${seconds} s, baseline after ${warmupSeconds} s (${describeConfig(config)})`
  )
  let started = 0
  let peak = 0
  const batch = Math.max(1, Math.round(rate / 100))
  // Every 10 ms, start rate/100 workflows; starts that lag behind do not pile up unboundedly.
  const load = yield* Stream.fromSchedule(Schedule.fixed("10 millis")).pipe(
    Stream.mapEffect(
      () =>
        Effect.forEach(
          Array.from({ length: batch }, () => `soak-${started++}`),
          (id) => service.execute(RoundTrip, new Start({ id })),
          { concurrency: "unbounded", discard: true }
        ),
      { concurrency: 16 }
    ),
    Stream.runDrain,
    Effect.fork
  )
  // Every 100 ms: the peak, overall and per 10 s window after the warm-up (the shape of the curve).
  const windows: Array<number> = []
  let measuring = false
  let ticks = 0
  const sampler = yield* rss.pipe(
    Effect.tap((value) =>
      Effect.sync(() => {
        peak = Math.max(peak, value)
        if (!measuring) return
        const window = Math.floor(ticks++ / 100)
        windows[window] = Math.max(windows[window] ?? 0, value)
      })
    ),
    Effect.repeat(Schedule.spaced("100 millis")),
    Effect.fork
  )

  yield* Effect.sleep(`${warmupSeconds} seconds`)
  // Both readings are taken under the same load, after a forced GC and a moment to return memory.
  const settled = Effect.gen(function*() {
    yield* gc
    yield* Effect.sleep("500 millis")
    yield* gc
    return process.memoryUsage()
  })
  const gcAvailable = yield* gc
  const baseline = yield* settled
  measuring = true
  const startedAtBaseline = started
  yield* progress("soak", `baseline RSS ${mb(baseline.rss)} MB after ${startedAtBaseline} workflows`)
  const remaining = seconds - warmupSeconds
  for (let elapsed = 0; elapsed < remaining; elapsed += 10) {
    yield* Effect.sleep(`${Math.min(10, remaining - elapsed)} seconds`)
    yield* progress("soak", `RSS ${mb(yield* rss)} MB, ${started} workflows started, ${yield* completed} completed`)
  }
  const end = yield* settled
  yield* Fiber.interrupt(load)
  yield* Fiber.interrupt(sampler)
  const done = yield* completed
  yield* progress(
    "soak",
    `end RSS ${mb(end.rss)} MB: growth ${mb(end.rss - baseline.rss)} MB (${
      mb(end.heapUsed - baseline.heapUsed)
    } MB heap used)`
  )
  yield* emit({
    rate,
    seconds,
    warmup_seconds: warmupSeconds,
    gc_forced: gcAvailable,
    workflows_started: started,
    workflows_completed: done,
    achieved_rate: round(started / seconds, 0),
    baseline_rss_mb: mb(baseline.rss),
    end_rss_mb: mb(end.rss),
    peak_rss_mb: mb(peak),
    rss_growth_mb: mb(end.rss - baseline.rss),
    heap_used_growth_mb: mb(end.heapUsed - baseline.heapUsed),
    baseline_heap_used_mb: mb(baseline.heapUsed),
    rss_peak_mb_per_10s_window: windows.map(mb)
  })
})

runChild(
  program.pipe(
    Effect.provide(WorkflowRuntime.layer.pipe(
      Layer.provide(WorkflowRegistry.layer([RoundTripHandler])),
      Layer.provide(RuntimeConfig.layer(runtimeOptions(config))),
      Layer.provide(PgWorkflowStore.layer),
      Layer.provideMerge(databaseLayer(config.maxConnections))
    ))
  )
)
