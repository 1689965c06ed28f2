import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"
import type { StoreError } from "../WorkflowError.js"
import type * as WorkflowStore from "../WorkflowStore.js"
import * as RealTime from "./realTime.js"
import * as Settlement from "./settlement.js"
import * as Signal from "./signal.js"

/**
 * A row whose work is done and whose outcome waits for the committer.
 *
 * @internal
 */
export interface Done {
  readonly item: WorkflowStore.ClaimedItem
  /** The input to apply on the row's instance with its ack (handler result, timer input), if any. */
  readonly input: Option.Option<unknown>
  /** The span the work ran in, when a tracer is installed. */
  readonly span?: Tracer.AnySpan | undefined
}

/** @internal */
export interface WorkerOptions {
  readonly kind: WorkflowStore.QueueKind
  readonly name: string
  readonly store: WorkflowStore.WorkflowStore["Type"]
  readonly workflowTypes: ReadonlyArray<string>
  readonly batchSize: number
  readonly concurrency: number
  readonly lease: Duration.Duration
  readonly heartbeat: Duration.Duration
  readonly shutdownTimeout: Duration.Duration
  /** Takes a wake-up ticket before a claim, so a signal during the claim is not lost. */
  readonly ticket: Effect.Effect<Effect.Effect<void>>
  /** Waits for more work after a claim that did not fill the batch. */
  readonly idle: (ticket: Effect.Effect<void>) => Effect.Effect<void>
  /** Runs one row; never fails (failures are settlements), may be interrupted. */
  readonly process: (item: WorkflowStore.ClaimedItem) => Effect.Effect<Settlement.Settlement>
  /**
   * Applies the inputs of done rows and acks the rows, in one transaction
   * fenced by this worker's lease; settles the rows whose input could not be
   * applied. Fails only when the database could not be reached (it is
   * retried whole: rows already acked are skipped by the fence).
   */
  readonly commit: (lockedBy: string, done: ReadonlyArray<Done>) => Effect.Effect<void, StoreError>
  /** Called after each claim (metrics). */
  readonly onClaimed: (items: ReadonlyArray<WorkflowStore.ClaimedItem>) => Effect.Effect<void>
  /** Services the handlers need, provided once to the handler fibers. */
  readonly handlerContext: Context.Context<never>
  /** Completes when this process may claim (its clock agrees with the database's). */
  readonly awaitClaims: Effect.Effect<void>
  /**
   * Admits claimed rows under their limits; the rows it leaves out are no
   * longer held by this worker (parked, or their lease left to expire).
   */
  readonly admit?:
    | ((lockedBy: string, items: ReadonlyArray<WorkflowStore.ClaimedItem>) => Effect.Effect<
      ReadonlyArray<WorkflowStore.ClaimedItem>
    >)
    | undefined
  /** Runs before each claim (releases rows waiting for a slot when due). */
  readonly beforeClaim?: Effect.Effect<void> | undefined
  /** Called once rows' outcomes are in the database (their slots are free). */
  readonly onSettled?: ((items: ReadonlyArray<WorkflowStore.ClaimedItem>) => Effect.Effect<void>) | undefined
}

/**
 * `"{workerId}-effect"` for a single worker, `"{workerId}-effect-{i}"` for
 * several (i from 0); likewise `-timer`. Stored as `locked_by`.
 *
 * @internal
 */
export const name = (workerId: string, kind: WorkflowStore.QueueKind, index: number, count: number): string =>
  count === 1 ? `${workerId}-${kind}` : `${workerId}-${kind}-${index}`

/** Retries of bookkeeping statements while the database is unreachable (about 20 s in all). */
const bookkeepingRetry = <A, E, R>(self: Effect.Effect<A, E, R>) => RealTime.retry(self, { times: 8 })

/**
 * Records a failed attempt, retrying while the database is unreachable. If
 * the database refuses what was to be written, the attempt is recorded again
 * with a plain message: bookkeeping that keeps failing would rerun the row
 * every lease period, never reaching its dead letter.
 *
 * @internal
 */
export const recordFailure = (
  store: WorkflowStore.WorkflowStore["Type"],
  kind: WorkflowStore.QueueKind,
  lockedBy: string,
  id: string,
  error: string,
  disposition: WorkflowStore.FailureDisposition,
  options?: { readonly timedOut?: boolean | undefined }
): Effect.Effect<void> =>
  store.fail(kind, lockedBy, id, error, disposition, options).pipe(
    bookkeepingRetry,
    Effect.catchAll((refused) =>
      store.fail(
        kind,
        lockedBy,
        id,
        `the attempt failed, and its error could not be stored: ${refused.message}`,
        disposition,
        options
      )
        .pipe(bookkeepingRetry)
    ),
    Effect.catchAll((refused) =>
      Effect.logWarning("could not record a failed attempt; the lease will expire and it runs again", refused)
    ),
    Effect.asVoid
  )

const withRealTimeout = (duration: Duration.DurationInput) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.flatMap(
    RealTime.timeoutTo(Effect.map(self, Option.some), duration, () => Option.none<A>()),
    Option.match({
      onNone: () => Effect.fail(new Cause.TimeoutException("bookkeeping timed out")),
      onSome: Effect.succeed
    })
  )

const failureBackoff = (failures: number) => Duration.millis(Math.min(100 * 2 ** Math.min(failures - 1, 10), 30_000))

/**
 * A started worker's two steps of shutdown. The runtime stops every worker's
 * claims first, then drains them all at once, so a shutdown takes one
 * `shutdownTimeout` however many workers there are.
 *
 * @internal
 */
export interface Running {
  /** Stops claiming; returns once no claim is in flight. */
  readonly stopClaiming: Effect.Effect<void>
  /**
   * Gives back the rows not started yet, waits for running ones up to the
   * shutdown timeout, interrupts the rest without waiting for them (a handler
   * that ignores interruption finishes in the background; its row's lease
   * expires), and commits what finished.
   */
  readonly drain: Effect.Effect<void>
}

/**
 * A queue worker: claims batches of rows, runs them on a fixed number of
 * handler fibers, commits their outcomes in groups, and extends the leases of
 * rows whose work started. Its fibers belong to the scope; shutting it down
 * is `Running`'s two steps.
 *
 * @internal
 */
export const start = (options: WorkerOptions): Effect.Effect<Running, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { kind, name, store } = options
    const buffered = yield* Queue.unbounded<WorkflowStore.ClaimedItem>()
    const acks = yield* Queue.unbounded<Done>()
    const slots = yield* Signal.make
    // Rows claimed and not finished (running or buffered): bounded by the batch size.
    const held = new Set<string>()
    // Rows claimed whose outcome is not in the database yet (held, or done and waiting for the ack): never
    // claimed again before, or a late ack could close a newer run of the same row (a timer that re-armed
    // itself, a lease that expired and came back to this worker).
    const owned = new Set<string>()
    const disown = (ids: Iterable<string>) =>
      Effect.sync(() => {
        for (const id of ids) owned.delete(id)
      })
    const refillAt = Math.max(1, Math.ceil(options.batchSize / 2))

    const settled = (items: ReadonlyArray<WorkflowStore.ClaimedItem>) =>
      options.onSettled === undefined || items.length === 0 ? Effect.void : options.onSettled(items)

    const settle = (item: WorkflowStore.ClaimedItem, settlement: Settlement.Settlement): Effect.Effect<void> => {
      switch (settlement._tag) {
        case "Complete":
          return Queue.offer(acks, { item, input: Option.none() })
        case "Apply":
          return Queue.offer(acks, { item, input: Option.some(settlement.input), span: settlement.span })
        case "Release":
          return store.release(kind, name, [item.id]).pipe(
            bookkeepingRetry,
            Effect.catchAll((error) => Effect.logWarning("could not release a lease; it will expire", error)),
            Effect.ensuring(disown([item.id])),
            Effect.zipRight(settled([item]))
          )
        case "Fail":
          return recordFailure(store, kind, name, item.id, settlement.error, settlement.disposition, {
            timedOut: settlement.timedOut
          }).pipe(
            Effect.ensuring(disown([item.id])),
            Effect.zipRight(settled([item]))
          )
      }
    }

    // Rows whose work started and is not settled: the only ones the heartbeat extends. A row waiting for a
    // handler slot keeps its claim's lease only; if that runs out first (every handler hung), it is not started
    // here but left to whichever worker claims it next, so hung handlers cannot hold work they never start.
    const started = new Set<string>()
    const claimedAt = new Map<string, number>()
    const leaseMillis = Duration.toMillis(options.lease)
    const startMargin = Math.min(Duration.toMillis(options.heartbeat), leaseMillis / 2)

    const runOne = (item: WorkflowStore.ClaimedItem) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const claimed = claimedAt.get(item.id) ?? now
          claimedAt.delete(item.id)
          if (now - claimed > leaseMillis - startMargin) {
            yield* Effect.logDebug(`${kind} ${item.id}: its lease ran out while it waited for a handler; not started`)
            held.delete(item.id)
            yield* disown([item.id])
            return yield* slots.notify
          }
          started.add(item.id)
          // Disconnected: interrupting this fiber returns at once even if the handler ignores interruption.
          const exit = yield* Effect.exit(restore(Effect.disconnect(options.process(item))))
          const settlement = Settlement.ofProcessing(exit)
          started.delete(item.id)
          yield* settle(item, settlement)
          held.delete(item.id)
          yield* slots.notify
        })
      )

    const handlerLoop = Queue.take(buffered).pipe(
      Effect.flatMap(runOne),
      Effect.forever,
      Effect.provide(options.handlerContext)
    )

    let consecutiveFailures = 0
    const claimOnce = Effect.gen(function*() {
      // Wait for room: refill when half the batch is free, or when nothing is held.
      while (held.size > 0 && options.batchSize - held.size < refillAt) {
        const slot = yield* slots.ticket
        if (held.size > 0 && options.batchSize - held.size < refillAt) yield* slot
      }
      yield* options.awaitClaims
      const ticket = yield* options.ticket
      const limit = options.batchSize - held.size
      const now = yield* Clock.currentTimeMillis
      if (options.beforeClaim !== undefined) yield* options.beforeClaim
      let claimedCount = 0
      const claimed = yield* Effect.uninterruptible(
        Effect.tap(
          store.claim({
            kind,
            workerId: name,
            workflowTypes: options.workflowTypes,
            limit,
            lease: options.lease,
            exclude: Array.from(owned)
          }).pipe(
            Effect.flatMap((items) => {
              claimedCount = items.length
              const admit = options.admit
              return admit === undefined || items.length === 0 ? Effect.succeed(items) : admit(name, items)
            })
          ),
          (items) =>
            Effect.sync(() => {
              for (const item of items) {
                held.add(item.id)
                claimedAt.set(item.id, now)
                owned.add(item.id)
              }
            }).pipe(Effect.zipRight(Queue.offerAll(buffered, items)))
        )
      )
      consecutiveFailures = 0
      yield* options.onClaimed(claimed)
      // Rows parked by the admission count as claimed: more may be ready behind them.
      if (claimedCount < limit) yield* options.idle(ticket)
    }).pipe(
      Effect.catchAll((error: StoreError) =>
        Effect.gen(function*() {
          consecutiveFailures++
          const delay = failureBackoff(consecutiveFailures)
          yield* Effect.logWarning(`claim failed; retrying in ${Duration.format(delay)}`, error)
          yield* RealTime.sleep(delay)
        })
      )
    )

    // Group commit: while one group's transaction is in flight, the next collects (no fixed delay, so a
    // lone result is not slowed). Each group runs whole; the retries between attempts (database down) stay
    // interruptible, and groups cut short by shutdown go back to the queue for the finalizer's last commit.
    const commitLoop = Queue.takeBetween(acks, 1, 1000).pipe(
      Effect.flatMap((chunk) => {
        const done = Array.from(chunk)
        return RealTime.retry(Effect.uninterruptible(options.commit(name, done))).pipe(
          Effect.zipRight(disown(done.map((d) => d.item.id))),
          Effect.zipRight(settled(done.map((d) => d.item))),
          Effect.onInterrupt(() => Queue.offerAll(acks, done))
        )
      }),
      Effect.forever
    )

    const heartbeatLoop = RealTime.spaced(
      Effect.zipRight(
        RealTime.sleep(options.heartbeat),
        Effect.suspend(() => store.extendLeases(kind, name, Array.from(started), options.lease)).pipe(
          Effect.catchAll((error) => Effect.logWarning("lease heartbeat failed", error))
        )
      ),
      0
    )

    // Supervised: an unexpected defect in the loop machinery is logged and the loop restarts with backoff.
    const supervise = <A, E>(label: string, loop: Effect.Effect<A, E>) =>
      loop.pipe(
        Effect.sandbox,
        Effect.tapError((cause) => Effect.logError(`${label} stopped unexpectedly; restarting`, cause)),
        (self) => RealTime.retry(self, { cap: "30 seconds" }),
        Effect.orDie,
        Effect.interruptible
      )

    const annotate = <A, E, R>(self: Effect.Effect<A, E, R>) =>
      self.pipe(Effect.annotateLogs({ package: "ironflow", worker: name, kind }))

    // Polling is untraced (any store): a tracer would record a root trace per claim otherwise.
    const claimer = yield* Effect.forkScoped(
      annotate(supervise("claim loop", RealTime.untraced(Effect.forever(claimOnce))))
    )
    const handlers = yield* Effect.forEach(
      Array.from({ length: options.concurrency }, (_, i) => i),
      () => Effect.forkScoped(annotate(supervise("handler loop", handlerLoop)))
    )
    const committer = yield* Effect.forkScoped(annotate(supervise("commit loop", commitLoop)))
    const heartbeat = yield* Effect.forkScoped(annotate(supervise("lease heartbeat", heartbeatLoop)))

    const drain = annotate(Effect.gen(function*() {
      const notStarted = yield* Queue.takeAll(buffered)
      const ids = Array.from(notStarted, (item) => item.id)
      for (const id of ids) held.delete(id)
      yield* store.release(kind, name, ids).pipe(
        withRealTimeout("5 seconds"),
        Effect.catchAllCause((cause) =>
          Effect.logWarning("could not release unstarted rows; leases will expire", cause)
        )
      )
      const drained = yield* Effect.gen(function*() {
        while (held.size > 0) {
          const slot = yield* slots.ticket
          if (held.size > 0) yield* slot
        }
      }).pipe(
        Effect.map(Option.some),
        (wait) => RealTime.timeoutTo(wait, options.shutdownTimeout, Option.none)
      )
      if (drained._tag === "None") {
        yield* Effect.logWarning(
          `${held.size} handler(s) still running after ${Duration.format(options.shutdownTimeout)}; interrupting them`
        )
      }
      yield* Fiber.interruptAll(handlers)
      yield* Fiber.interrupt(committer)
      const remaining = yield* Queue.takeAll(acks)
      yield* options.commit(name, Array.from(remaining)).pipe(
        withRealTimeout("5 seconds"),
        Effect.catchAllCause((cause) => Effect.logWarning("could not ack at shutdown; rows will run again", cause))
      )
      yield* Fiber.interrupt(heartbeat)
    }))
    return { stopClaiming: Fiber.interrupt(claimer), drain }
  })
