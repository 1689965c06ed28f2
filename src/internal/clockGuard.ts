import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Metrics from "../WorkflowMetrics.js"
import type * as WorkflowStore from "../WorkflowStore.js"
import * as RealTime from "./realTime.js"

/**
 * What the runtime knows of its clock against the database's.
 *
 * @internal
 */
export interface ClockStatus {
  readonly offsetMillis: Option.Option<number>
  readonly paused: Option.Option<string>
}

/**
 * Keeps a runtime's leases honest when machines disagree on the time. Leases
 * and due times are written and compared by whichever process claims, so two
 * processes whose clocks differ would read one lease differently. The guard
 * measures this process's `Clock` against the database's and
 *
 * - gives the workers a clock moved onto the database's time, so all lease and
 *   due-time arithmetic of every runtime happens on one clock (the database's);
 * - stops claims while the disagreement exceeds the bound (a clock that far off
 *   is broken, and the times it gives `decide` are wrong too), loudly.
 *
 * @internal
 */
export interface ClockGuard {
  /** Completes once claims are allowed: at once while the clocks agree. */
  readonly awaitClaims: Effect.Effect<void>
  /**
   * This process's clock moved by the measured offset, onto the database's
   * time: the clock of the workers and of the announcements.
   */
  readonly clock: Clock.Clock
  readonly status: Effect.Effect<ClockStatus>
}

/** One measurement: this process's clock minus the database's, and how sure it is (half the round trip). */
const sample = (store: WorkflowStore.WorkflowStore["Type"], base: Clock.Clock) =>
  Effect.gen(function*() {
    const real0 = yield* RealTime.currentTimeMillis
    const before = yield* base.currentTimeMillis
    const database = yield* store.databaseTimeMillis
    const after = yield* base.currentTimeMillis
    const real1 = yield* RealTime.currentTimeMillis
    return { offset: (before + after) / 2 - database, uncertainty: Math.max(0, real1 - real0) / 2 }
  })

const format = (millis: number) => Duration.format(Duration.millis(Math.round(Math.abs(millis))))

/**
 * `base` moved back by `offset()` milliseconds (read at every use); sleeps are `base`'s.
 *
 * @internal
 */
export const shifted = (base: Clock.Clock, offset: () => number): Clock.Clock => ({
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => base.unsafeCurrentTimeMillis() - offset(),
  unsafeCurrentTimeNanos: () => base.unsafeCurrentTimeNanos() - BigInt(offset()) * 1_000_000n,
  currentTimeMillis: Effect.sync(() => base.unsafeCurrentTimeMillis() - offset()),
  currentTimeNanos: Effect.sync(() => base.unsafeCurrentTimeNanos() - BigInt(offset()) * 1_000_000n),
  sleep: (duration) => base.sleep(duration)
})

/**
 * Starts the guard: measures once before returning (so a process with a
 * broken clock never claims, not even once), then every `interval`. Without a
 * bound there is no check and the workers use this process's clock as it is.
 *
 * @internal
 */
export const start = (
  store: WorkflowStore.WorkflowStore["Type"],
  options: {
    readonly maxSkew: Option.Option<Duration.Duration>
    readonly interval: Duration.Duration
    /** Runs when claims pause or resume (to tell operators at once). */
    readonly onChange: (status: ClockStatus) => Effect.Effect<void>
  }
): Effect.Effect<ClockGuard, never, Scope.Scope> =>
  Effect.gen(function*() {
    const base = yield* Effect.clock
    if (Option.isNone(options.maxSkew)) {
      return {
        awaitClaims: Effect.void,
        clock: base,
        status: Effect.succeed({ offsetMillis: Option.none(), paused: Option.none() })
      }
    }
    const bound = Duration.toMillis(options.maxSkew.value)
    const open = yield* Effect.makeLatch(false)
    // Whole milliseconds: the database stores microseconds, and a fraction would only add noise.
    let offset = 0
    let measured = false
    let paused: Option.Option<string> = Option.some("the clock has not been compared with the database's yet")
    let checksWhilePaused = 0

    const clock = shifted(base, () => offset)
    const tell = () => options.onChange(status()).pipe(Effect.withClock(clock))
    const status = (): ClockStatus => ({ offsetMillis: measured ? Option.some(offset) : Option.none(), paused })

    const check = Effect.gen(function*() {
      const samples = yield* Effect.all([sample(store, base), sample(store, base), sample(store, base)])
      const best = samples.reduce((a, b) => (b.uncertainty < a.uncertainty ? b : a))
      const wasPaused = Option.isSome(paused) && measured
      measured = true
      offset = Math.round(best.offset)
      yield* Metric.set(Metrics.clockOffset, best.offset)
      if (Math.abs(best.offset) - best.uncertainty > bound) {
        const hint = Math.abs(best.offset) > 365 * 24 * 3600 * 1000
          ? " (a TestClock? tests under TestClock use TestRuntime, or RuntimeConfig maxClockSkew: \"off\")"
          : ""
        const reason = `this runtime's clock is ${format(best.offset)} ${
          best.offset > 0 ? "ahead of" : "behind"
        } the database's, beyond the allowed ${format(bound)}${hint}`
        paused = Option.some(reason)
        yield* open.close
        yield* Metric.set(Metrics.claimsPaused, 1)
        if (!wasPaused) yield* tell()
        // Loud when it starts, then once a minute or so while it lasts.
        if (!wasPaused || ++checksWhilePaused % 6 === 0) {
          yield* Effect.logError(`${reason}: it claims no effects or timers until the clocks agree; fix its time sync`)
        }
        return
      }
      paused = Option.none()
      checksWhilePaused = 0
      yield* Metric.set(Metrics.claimsPaused, 0)
      if (wasPaused) {
        yield* Effect.logWarning(
          `the clock agrees with the database's again (${format(best.offset)} off); claims resume`
        )
        yield* tell()
      }
      yield* open.open
    })

    // Untraced, the first check too: its samples are housekeeping, not part of any workflow's trace.
    const checkLogged = check.pipe(
      Effect.catchAll((error) =>
        Effect.logWarning("could not compare the clock with the database's; keeping the last verdict", error)
      ),
      RealTime.untraced
    )
    yield* checkLogged
    // Until a first measurement succeeds, look again soon rather than every interval.
    yield* RealTime.spaced(
      Effect.suspend(() =>
        measured
          ? RealTime.sleep(options.interval).pipe(Effect.zipRight(checkLogged))
          : RealTime.sleep(Duration.min(options.interval, Duration.seconds(1))).pipe(Effect.zipRight(checkLogged))
      ),
      0
    ).pipe(Effect.interruptible, Effect.forkScoped)

    return {
      awaitClaims: open.await,
      clock,
      status: Effect.sync(status)
    }
  })
