/**
 * The peer: graphile-worker 0.18 (devDependency) on its own database.
 *
 * - `--mode plain|batched --n 20000`: drain `n` no-op jobs added with one
 *   `graphile_worker.add_jobs` call before the workers start; the clock runs
 *   from `run()` to the last task call. plain = defaults, concurrency 8;
 *   batched = localQueue 200, completeJobBatchDelay 0, failJobBatchDelay 0, concurrency 8.
 * - `--mode pickup --samples 200 --warmup 20`: one job at a time, from just
 *   before `addJob` to the start of the task, in this process.
 *
 *   node --import tsx scratchpad/bench/graphile.ts --db postgres://... --mode batched --n 20000
 */
import { Deferred, Effect } from "effect"
import { Logger, run, runMigrations, type RunnerOptions } from "graphile-worker"
import pg from "pg"
import {
  args,
  backend,
  emit,
  makeCounter,
  mb,
  median,
  percentile,
  progress,
  round,
  rssSampler,
  runChild
} from "./common.js"

const mode = args.string("mode", "batched")
const { url } = backend()
const label = `graphile ${mode}`

const quiet = new Logger(() => () => {})

const options = (batched: boolean): RunnerOptions => ({
  connectionString: url,
  concurrency: 8,
  noHandleSignals: true,
  logger: quiet,
  ...(batched
    ? { preset: { worker: { localQueue: { size: 200 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } } }
    : {})
})

const promise = <A>(label: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (cause) => new Error(`graphile-worker: ${label} failed: ${String(cause)}`) })

/** A running graphile-worker runner, stopped when the scope closes. */
const runner = (runnerOptions: RunnerOptions) =>
  Effect.acquireRelease(
    promise("run", () => run(runnerOptions)),
    (r) => promise("stop", () => r.stop()).pipe(Effect.timeout("10 seconds"), Effect.ignore)
  )

const drain = (batched: boolean) =>
  Effect.gen(function*() {
    const n = args.number("n", 20_000)
    const rss = yield* rssSampler
    yield* promise("migrate", () => runMigrations({ connectionString: url, logger: quiet }))
    yield* Effect.acquireUseRelease(
      Effect.sync(() => new pg.Client({ connectionString: url })).pipe(
        Effect.tap((client) => promise("connect", () => client.connect()))
      ),
      (client) =>
        promise("add_jobs", () =>
          client.query(
            `SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(
              SELECT ROW('noop', '{}'::json, NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec
              FROM generate_series(1, $1::int)))`,
            [n]
          )),
      (client) => promise("end", () => client.end()).pipe(Effect.ignore)
    )
    yield* progress(label, `queued ${n} jobs; starting the workers`)
    const handled = yield* makeCounter(n)
    const elapsed = yield* Effect.scoped(Effect.gen(function*() {
      const started = performance.now()
      yield* runner({
        ...options(batched),
        taskList: {
          noop: async () => {
            handled.hit()
          }
        }
      })
      return (yield* handled.reached) - started
    }))
    yield* progress(label, `${n} task calls in ${round(elapsed, 1)} ms`)
    yield* emit({
      n,
      mode,
      jobs_per_s: round(n / (elapsed / 1000), 0),
      handled_ms: round(elapsed, 1),
      peak_rss_mb: mb(yield* rss.peak)
    })
  })

const pickup = Effect.gen(function*() {
  const samples = args.number("samples", 200)
  const warmup = args.number("warmup", 20)
  yield* promise("migrate", () => runMigrations({ connectionString: url, logger: quiet }))
  let current: Deferred.Deferred<number> | undefined
  const r = yield* runner({
    ...options(false),
    taskList: {
      noop: async () => {
        const at = performance.now()
        if (current !== undefined) Deferred.unsafeDone(current, Effect.succeed(at))
      }
    }
  })
  const once = Effect.gen(function*() {
    const started = yield* Deferred.make<number>()
    current = started
    const before = performance.now()
    yield* promise("addJob", () => r.addJob("noop", {}))
    return (yield* Deferred.await(started).pipe(Effect.timeout("5 seconds"))) - before
  })
  yield* Effect.repeatN(once, warmup - 1)
  const latencies: Array<number> = []
  for (let i = 0; i < samples; i++) latencies.push(yield* once)
  yield* progress(
    label,
    `${samples} samples: p50 ${round(median(latencies))} ms, p99 ${round(percentile(latencies, 99))} ms`
  )
  yield* emit({
    samples,
    pickup_p50_ms: round(median(latencies), 3),
    pickup_p99_ms: round(percentile(latencies, 99), 3),
    pickup_max_ms: round(Math.max(...latencies), 3)
  })
})

runChild(Effect.scoped(mode === "pickup" ? pickup : drain(mode === "batched")))
