/**
 * One runtime process of the chaos harness: `WorkflowRuntime.layer` for the
 * chaos workflow under `NodeRuntime.runMain(Layer.launch(...))`, so SIGTERM
 * drains it gracefully and SIGKILL is a crash.
 *
 * Configured by the `CHAOS_WORKER` environment variable (JSON, see
 * `WorkerOptions`); started by `main.ts`:
 *
 *   CHAOS_WORKER='{"url":"postgres://...","workerId":"w1"}' node --import tsx scratchpad/chaos/worker.ts
 *
 * Prints `CHAOS_READY <workerId> <pid>` once its workers run.
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Clock, Console, Effect, Layer, Redacted } from "effect"
import * as PgWorkflowStore from "ironflow/PgWorkflowStore"
import * as RetryPolicy from "ironflow/RetryPolicy"
import * as RuntimeConfig from "ironflow/RuntimeConfig"
import * as WorkflowRegistry from "ironflow/WorkflowRegistry"
import * as WorkflowRuntime from "ironflow/WorkflowRuntime"
import * as WorkflowSchedule from "ironflow/WorkflowSchedule"
import * as WorkflowStore from "ironflow/WorkflowStore"
import { shifted } from "../../src/internal/clockGuard.js"
import { ChaosHandler, HandlerBehaviour } from "./ChaosWorkflow.js"
import { cronTallySchedule, CronTallyWorkflow } from "./CronTallyWorkflow.js"
import { LimitedHandler } from "./LimitedWorkflow.js"
import { TallyHandler } from "./TallyWorkflow.js"

/** What the driver passes in `CHAOS_WORKER`. */
export interface WorkerOptions {
  readonly url: string
  readonly workerId: string
  readonly maxConnections?: number | undefined
  readonly effectLockMs?: number | undefined
  readonly timerLockMs?: number | undefined
  readonly heartbeatMs?: number | undefined
  readonly shutdownTimeoutMs?: number | undefined
  readonly effectPollMs?: number | undefined
  readonly timerPollMs?: number | undefined
  readonly handlerConcurrency?: number | undefined
  readonly claimBatchSize?: number | undefined
  readonly delayMs?: readonly [number, number] | undefined
  readonly retry?: { readonly maxAttempts: number; readonly baseMs: number; readonly maxMs: number } | undefined
  /** Run the exactly-once scenario's workflow instead of the chaos workflow. */
  readonly tally?: boolean | undefined
  /**
   * Probability that this process SIGKILLs itself at a worker's group commit: half of the time just
   * before it (handlers returned, nothing applied), half just after it (applied, not yet known here).
   */
  readonly killAtCommit?: number | undefined
  /** This process's clock runs this far ahead of the real one (negative: behind), as on a host off NTP. */
  readonly clockSkewMs?: number | undefined
  /** Run the schedules scenario's workflow and declare its schedule (a tick every `everyMs`). */
  readonly cron?: { readonly name: string; readonly everyMs: number; readonly pollMs: number } | undefined
  /** Run the limits scenario's workflow (a handler with a concurrency limit per key). */
  readonly limited?: boolean | undefined
}

const options = JSON.parse(process.env.CHAOS_WORKER ?? "{}") as WorkerOptions
if (typeof options.url !== "string" || typeof options.workerId !== "string") {
  throw new Error("CHAOS_WORKER must be a JSON object with at least url and workerId")
}

const ms = (value: number | undefined, fallback: number) => `${value ?? fallback} millis` as const

// Never outlive the driver: if it dies without cleaning up (SIGKILL), this process is re-parented; exit too.
const parent = process.ppid
setInterval(() => {
  if (process.ppid !== parent) process.exit(70)
}, 1000).unref()

const Ready = Layer.effectDiscard(
  Effect.gen(function*() {
    const runtime = yield* WorkflowRuntime.WorkflowRuntime
    yield* Console.log(`CHAOS_READY ${runtime.workerId()} ${process.pid}`)
  })
)

const killAtCommit = options.killAtCommit ?? 0
const crash = Effect.sync(() => process.kill(process.pid, "SIGKILL"))

/** The store, with the crash points of `killAtCommit` around the workers' group commits. */
const CrashingStore = Layer.effect(
  WorkflowStore.WorkflowStore,
  Effect.map(WorkflowStore.WorkflowStore, (store): WorkflowStore.WorkflowStore["Type"] => ({
    ...store,
    transactGroup: (request, body) => {
      if (request.fence === undefined || Math.random() >= killAtCommit) return store.transactGroup(request, body)
      return Math.random() < 0.5
        ? Effect.zipRight(crash, store.transactGroup(request, body))
        : Effect.zipLeft(store.transactGroup(request, body), crash)
    }
  }))
)

const Schedules = options.cron === undefined ? Layer.empty : WorkflowSchedule.layer(
  [cronTallySchedule(options.cron.name, options.cron.everyMs)],
  { pollInterval: `${options.cron.pollMs} millis` }
)

const Main = Ready.pipe(
  Layer.provide(Layer.merge(WorkflowRuntime.layer, Schedules)),
  Layer.provide(
    options.cron !== undefined
      ? WorkflowRegistry.layer([CronTallyWorkflow])
      : options.tally === true
      ? WorkflowRegistry.layer([TallyHandler])
      : options.limited === true
      ? WorkflowRegistry.layer([LimitedHandler])
      : WorkflowRegistry.layer([ChaosHandler])
  ),
  Layer.provide(killAtCommit > 0 ? CrashingStore : Layer.empty),
  Layer.provide(HandlerBehaviour.layer({ delayMs: options.delayMs ?? [5, 25], worker: options.workerId })),
  Layer.provide(RuntimeConfig.layer({
    workerId: options.workerId,
    effectLockDuration: ms(options.effectLockMs, 3000),
    timerLockDuration: ms(options.timerLockMs, 3000),
    leaseHeartbeatInterval: ms(options.heartbeatMs, 1000),
    shutdownTimeout: ms(options.shutdownTimeoutMs, 5000),
    effectPollInterval: ms(options.effectPollMs, 100),
    timerPollInterval: ms(options.timerPollMs, 500),
    handlerConcurrency: options.handlerConcurrency ?? 16,
    claimBatchSize: options.claimBatchSize ?? 32,
    retryPolicy: RetryPolicy.make({
      maxAttempts: options.retry?.maxAttempts ?? 10,
      baseDelay: ms(options.retry?.baseMs, 200),
      maxDelay: ms(options.retry?.maxMs, 2000)
    })
  })),
  // The driver applied the migrations before starting any worker.
  Layer.provideMerge(PgWorkflowStore.layerWith({ migrate: false })),
  Layer.provideMerge(PgClient.layer({
    url: Redacted.make(options.url),
    maxConnections: options.maxConnections ?? 6,
    applicationName: `ironflow-chaos-${options.workerId}`
  }))
)

const skew = options.clockSkewMs ?? 0
// The guard's shifted clock, moved back by minus the skew: ahead by the skew.
const skewed = shifted(Clock.make(), () => -skew)

NodeRuntime.runMain(skew === 0 ? Layer.launch(Main) : Effect.withClock(Layer.launch(Main), skewed))
