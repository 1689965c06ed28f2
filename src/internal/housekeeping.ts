/**
 * A runtime's housekeeping, beside its workers: the clock check against the
 * database's, the announcement of this process for operators, queue depths
 * as gauges, and retention. Each is a fiber of the scope it starts in; they
 * are started before the workers so that they stop after the workers drained
 * (finalizers run in reverse order), the announcement retired last.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { hostname } from "node:os"
import * as Retention from "../Retention.js"
import type * as RuntimeConfig from "../RuntimeConfig.js"
import * as Metrics from "../WorkflowMetrics.js"
import { WorkflowStore } from "../WorkflowStore.js"
import * as ClockGuard from "./clockGuard.js"
import * as RealTime from "./realTime.js"

/** @internal */
export interface Options {
  readonly workerId: string
  readonly workflowTypes: ReadonlyArray<string>
  readonly config: RuntimeConfig.Resolved
}

/**
 * Announces this process and the workflow types it runs, refreshed with the
 * lease heartbeat and retired when the scope closes. The clock check comes
 * first: a process whose clock disagrees with the database's claims nothing,
 * and says so in its announcement at once. Returns the guard the workers run
 * under.
 */
const announce = (
  store: WorkflowStore["Type"],
  options: Options
): Effect.Effect<ClockGuard.ClockGuard, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { config, workerId } = options
    const ttl = Duration.times(config.leaseHeartbeatInterval, 3)
    const announceWith = (status: ClockGuard.ClockStatus) =>
      store.announceWorker({
        workerId,
        workflowTypes: options.workflowTypes,
        host: hostname(),
        pid: process.pid,
        clockOffsetMillis: status.offsetMillis,
        claimsPaused: status.paused
      }, ttl).pipe(
        Effect.catchAll((error) => Effect.logDebug("could not announce this runtime", error))
      )
    const guard = yield* ClockGuard.start(store, {
      maxSkew: config.maxClockSkew,
      interval: config.clockCheckInterval,
      onChange: announceWith
    })
    const refresh = Effect.flatMap(guard.status, announceWith).pipe(Effect.withClock(guard.clock))
    yield* refresh
    const announcer = yield* RealTime.spaced(
      RealTime.sleep(config.leaseHeartbeatInterval).pipe(Effect.zipRight(refresh)),
      0
    )
      .pipe(Effect.interruptible, Effect.forkScoped)
    // Stop announcing first: a refresh that lands after the retirement would announce a stopped runtime.
    yield* Effect.addFinalizer(() =>
      Fiber.interrupt(announcer).pipe(
        Effect.zipRight(RealTime.timeoutTo(store.retireWorker(workerId), "5 seconds", () => undefined)),
        Effect.ignore
      )
    )
    return guard
  })

/** Queue depths as gauges (pending, expired leases, long-running, dead letters), read every `queueMetricsInterval`. */
const gauges = (store: WorkflowStore["Type"], config: RuntimeConfig.Resolved) =>
  RealTime.spaced(
    store.queueStats.pipe(
      Effect.flatMap(Metrics.recordQueueStats),
      Effect.catchAll((error) => Effect.logDebug("could not read queue depths", error))
    ),
    config.queueMetricsInterval
  ).pipe(Effect.interruptible, Effect.forkScoped)

/** Retention, when configured: one prune every `interval` (default 1 hour). */
const retention = (store: WorkflowStore["Type"], options: Retention.Options) =>
  RealTime.spaced(
    Retention.prune(options).pipe(
      Effect.provideService(WorkflowStore, store),
      Effect.tap((report) =>
        report.outbox + report.timers + report.instances > 0
          ? Effect.logInfo(
            `retention: deleted ${report.outbox} effect rows, ${report.timers} timer rows, ${report.instances} instances (${report.events} events)`
          )
          : Effect.void
      ),
      Effect.catchAll((error) => Effect.logWarning("retention run failed", error))
    ),
    options.interval ?? "1 hour"
  ).pipe(Effect.interruptible, Effect.forkScoped)

/**
 * Starts the housekeeping in the current scope and returns the clock guard
 * the workers claim under.
 *
 * @internal
 */
export const start = (
  store: WorkflowStore["Type"],
  options: Options
): Effect.Effect<ClockGuard.ClockGuard, never, Scope.Scope> =>
  Effect.gen(function*() {
    const guard = yield* announce(store, options)
    yield* gauges(store, options.config)
    if (Option.isSome(options.config.retention)) yield* retention(store, options.config.retention.value)
    return guard
  })
