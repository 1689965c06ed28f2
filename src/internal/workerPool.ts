/**
 * The runtime's queue workers: `count` workers of each kind in a table of
 * kinds, started alike, and shut down together in two steps (no worker
 * claims anything once shutdown begins, then all drain at once, so a shutdown
 * takes one `shutdownTimeout` however many workers there are).
 */
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as RuntimeConfig from "../RuntimeConfig.js"
import * as Metrics from "../WorkflowMetrics.js"
import type { ClaimedItem, QueueKind, Signal, WorkflowStore } from "../WorkflowStore.js"
import type * as ClockGuard from "./clockGuard.js"
import type * as Limits from "./limits.js"
import * as RealTime from "./realTime.js"
import type * as Settlement from "./settlement.js"
import * as Worker from "./worker.js"

/**
 * What tells one kind of worker from the other; the rest of a worker's
 * options is the runtime's configuration.
 *
 * @internal
 */
export interface Kind {
  readonly kind: QueueKind
  readonly count: number
  readonly lease: Duration.Duration
  readonly wakeups: Signal
  /** Waits for more work after a claim that did not fill the batch. */
  readonly idle: (ticket: Effect.Effect<void>) => Effect.Effect<void>
  readonly process: (item: ClaimedItem) => Effect.Effect<Settlement.Settlement>
  /** Services the handlers need (timers run no handler). */
  readonly handlerContext: Context.Context<never>
  /** Admission under limits (effects only). */
  readonly hooks: Limits.Limits["hooks"]
}

/**
 * An effect worker waits for a wake-up (a commit that enqueued effects) or
 * its poll interval.
 *
 * @internal
 */
export const effectIdle = (config: RuntimeConfig.Resolved) => (ticket: Effect.Effect<void>): Effect.Effect<void> =>
  Effect.raceFirst(ticket, RealTime.sleep(config.effectPollInterval))

/**
 * A timer worker sleeps until the earliest due timer, at most a poll
 * interval; a due one not claimable yet is being claimed elsewhere: it looks
 * again soon.
 *
 * @internal
 */
export const timerIdle =
  (store: WorkflowStore["Type"], config: RuntimeConfig.Resolved, types: ReadonlyArray<string>) =>
  (ticket: Effect.Effect<void>): Effect.Effect<void> =>
    Effect.gen(function*() {
      const next = yield* store.nextTimerDue(types).pipe(Effect.orElseSucceed(() => Option.none<Date>()))
      const now = yield* Clock.currentTimeMillis
      const poll = Duration.toMillis(config.timerPollInterval)
      const wait = Option.match(next, {
        onNone: () => poll,
        onSome: (due) => Math.min(poll, Math.max(due.getTime() - now, Math.min(poll, 10)))
      })
      yield* Effect.raceFirst(ticket, RealTime.sleep(Duration.millis(wait)))
    })

/** Pickup latency: from a row's due time to its claim. */
const onClaimed = (items: ReadonlyArray<ClaimedItem>) =>
  items.length === 0 ? Effect.void : Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    for (const item of items) {
      yield* Metric.update(
        Metrics.tagged(Metrics.pickupLatency, { kind: item.kind }),
        Math.max(0, now - item.dueAt.getTime())
      )
    }
  })

/** @internal */
export interface Options {
  readonly store: WorkflowStore["Type"]
  readonly config: RuntimeConfig.Resolved
  readonly workerId: string
  readonly workflowTypes: ReadonlyArray<string>
  /** The committer of each kind's workers. */
  readonly commit: (kind: QueueKind) => Worker.WorkerOptions["commit"]
  /** The workers claim only while it allows, and keep time on its clock. */
  readonly guard: ClockGuard.ClockGuard
}

/**
 * Starts the workers of every kind, in table order, in the current scope;
 * the returned `Running` shuts all of them down together.
 *
 * @internal
 */
export const start = (
  kinds: ReadonlyArray<Kind>,
  options: Options
): Effect.Effect<Worker.Running, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { config, guard } = options
    const workers = yield* Effect.forEach(kinds, (kind) =>
      Effect.forEach(
        Array.from({ length: kind.count }, (_, i) => i),
        (i) =>
          Worker.start({
            kind: kind.kind,
            name: Worker.name(options.workerId, kind.kind, i, kind.count),
            store: options.store,
            workflowTypes: options.workflowTypes,
            batchSize: config.claimBatchSize,
            concurrency: config.handlerConcurrency,
            lease: kind.lease,
            heartbeat: config.leaseHeartbeatInterval,
            shutdownTimeout: config.shutdownTimeout,
            ticket: kind.wakeups.ticket,
            idle: kind.idle,
            process: kind.process,
            commit: options.commit(kind.kind),
            onClaimed,
            handlerContext: kind.handlerContext,
            awaitClaims: guard.awaitClaims,
            ...kind.hooks
          }).pipe(Effect.withClock(guard.clock))
      ))
    const all = workers.flat()
    return {
      stopClaiming: Effect.forEach(all, (worker) => worker.stopClaiming, { concurrency: "unbounded", discard: true }),
      drain: Effect.forEach(all, (worker) => worker.drain, { concurrency: "unbounded", discard: true })
    }
  })
