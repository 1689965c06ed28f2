/**
 * Scenario 3: pickup latency. One workflow at a time: from just before
 * `service.execute(Start)` (whose commit enqueues the effect) to the start of
 * the effect's handler, which records `performance.now()`. `--warmup`
 * samples are discarded, then `--samples` are taken. With `--topology split`
 * the executes go through a separate service (own connections and store, no
 * workers), so only the database can wake the workers (see common.ts).
 *
 *   node --import tsx scratchpad/bench/pickup.ts --db postgres://... --samples 200 --config '{...}'
 */
import { Deferred, Effect, Layer, Option } from "effect"
import { PgWorkflowStore, RuntimeConfig, WorkflowRegistry, WorkflowRuntime, WorkflowService } from "ironflow"
import { PickupWorkflow, Start } from "./BenchWorkflows.js"
import {
  args,
  databaseLayer,
  describeConfig,
  emit,
  median,
  percentile,
  progress,
  round,
  runChild,
  runtimeOptions,
  separateService,
  topology
} from "./common.js"

const samples = args.number("samples", 200)
const warmup = args.number("warmup", 20)
const config = args.config()
const split = topology() === "split"
const label = split ? "pickup (split)" : "pickup"

let current: Deferred.Deferred<number> | undefined
const PickupHandler = PickupWorkflow.handler(() =>
  Effect.sync(() => {
    const at = performance.now()
    if (current !== undefined) Deferred.unsafeDone(current, Effect.succeed(at))
    return Option.none()
  })
)

const program = Effect.gen(function*() {
  const service = split
    ? yield* separateService([PickupHandler], config.maxConnections)
    : yield* WorkflowService.WorkflowService
  yield* progress(label, `${warmup} warm-up and ${samples} samples, one at a time (${describeConfig(config)})`)
  let next = 0
  const once = Effect.gen(function*() {
    const handlerStarted = yield* Deferred.make<number>()
    current = handlerStarted
    const id = `pickup-${next++}`
    const before = performance.now()
    yield* service.execute(PickupWorkflow, new Start({ id }))
    const committed = performance.now()
    const at = yield* Deferred.await(handlerStarted).pipe(Effect.timeout("5 seconds"))
    return { total: at - before, execute: committed - before }
  })
  yield* Effect.repeatN(once, warmup - 1)
  const results: Array<{ total: number; execute: number }> = []
  for (let i = 0; i < samples; i++) results.push(yield* once)
  const latencies = results.map((r) => r.total)
  const executes = results.map((r) => r.execute)
  yield* progress(
    label,
    `p50 ${round(median(latencies))} ms, p99 ${round(percentile(latencies, 99))} ms (execute alone: p50 ${
      round(median(executes))
    } ms)`
  )
  yield* emit({
    samples,
    config,
    topology: split ? "split" : "same",
    pickup_p50_ms: round(median(latencies), 3),
    pickup_p99_ms: round(percentile(latencies, 99), 3),
    pickup_max_ms: round(Math.max(...latencies), 3),
    execute_p50_ms: round(median(executes), 3),
    execute_p99_ms: round(percentile(executes, 99), 3)
  })
})

runChild(
  program.pipe(
    Effect.scoped,
    Effect.provide(WorkflowRuntime.layer.pipe(
      Layer.provide(WorkflowRegistry.layer([PickupHandler])),
      Layer.provide(RuntimeConfig.layer(runtimeOptions(config))),
      Layer.provide(PgWorkflowStore.layer),
      Layer.provide(databaseLayer(config.maxConnections))
    ))
  )
)
