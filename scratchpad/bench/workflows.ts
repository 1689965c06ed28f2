/**
 * Scenario 2 (and 7, with `--embedded`): workflow round trips. A workflow is
 * Start → (Started, effect Work) → the handler returns Finish → Finished,
 * terminal. After `--warmup` workflows ran to completion, `--n` are started
 * at once (`--startConcurrency` executes in flight) and the clock runs until
 * all of them are completed in the database.
 *
 *   node --import tsx scratchpad/bench/workflows.ts --db postgres://... --n 2000 --config '{...}'
 */
import { SqlClient } from "@effect/sql"
import { Effect, Layer, Option } from "effect"
import { PgWorkflowStore, RuntimeConfig, WorkflowRegistry, WorkflowRuntime, WorkflowService } from "ironflow"
import { Finish, makeRoundTrip, Start } from "./BenchWorkflows.js"
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
  rssSampler,
  runChild,
  runtimeOptions,
  waitUntil
} from "./common.js"

const n = args.number("n", 2_000)
const warmup = args.number("warmup", 50)
const config = args.config()
const startConcurrency = args.number("startConcurrency", Math.max(16, config.maxConnections * 2))
const { embedded } = backend()
const label = embedded ? "workflows (embedded)" : "workflows"

let onFinish = (): void => {}
const RoundTrip = makeRoundTrip(() => onFinish())
const RoundTripHandler = RoundTrip.handler((work) => Effect.succeed(Option.some(new Finish({ id: work.id }))))

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const service = yield* WorkflowService.WorkflowService
  const rss = yield* rssSampler
  const finished = yield* makeCounter(warmup + n)
  onFinish = finished.hit

  const completed = sql<{ n: number }>`
    SELECT count(*)::int AS n FROM ironflow.workflow_instances
    WHERE workflow_type = ${RoundTrip.type} AND completed_at IS NOT NULL`.pipe(Effect.map((rows) => rows[0].n))

  const startAll = (prefix: string, count: number) =>
    Effect.forEach(
      Array.from({ length: count }, (_, i) => `${prefix}-${i}`),
      (id) => service.execute(RoundTrip, new Start({ id })),
      { concurrency: startConcurrency, discard: true }
    )

  yield* progress(label, `warm-up: ${warmup} workflows (${describeConfig(config)})`)
  yield* startAll("warmup", warmup)
  yield* waitUntil(Effect.map(completed, (done) => done >= warmup))

  yield* progress(label, `starting ${n} workflows, ${startConcurrency} starts in flight`)
  const started = performance.now()
  yield* startAll("run", n)
  const startedAll = performance.now()
  const lastDecided = yield* finished.reached
  yield* waitUntil(Effect.map(completed, (done) => done >= warmup + n), "2 millis")
  const elapsed = performance.now() - started
  yield* progress(label, `${n} workflows completed in ${round(elapsed, 1)} ms`)
  yield* emit({
    n,
    warmup,
    config,
    startConcurrency,
    workflows_per_s: round(n / (elapsed / 1000), 0),
    elapsed_ms: round(elapsed, 1),
    starts_ms: round(startedAll - started, 1),
    last_finish_decided_ms: round(lastDecided - started, 1),
    peak_rss_mb: mb(yield* rss.peak)
  })
})

runChild(
  program.pipe(
    Effect.scoped,
    Effect.provide(WorkflowRuntime.layer.pipe(
      Layer.provide(WorkflowRegistry.layer([RoundTripHandler])),
      Layer.provide(RuntimeConfig.layer(runtimeOptions(config))),
      Layer.provide(PgWorkflowStore.layer),
      Layer.provideMerge(databaseLayer(config.maxConnections))
    ))
  )
)
