/**
 * How failed effects and timers are retried: a `Schedule` fed with each
 * failure's `Cause`. When the schedule ends, the row becomes a dead letter.
 *
 * The default equals ironflow's `RetryPolicy`: 5 attempts in all (the first
 * included), delays `min(baseDelay × 2^(n−1), maxDelay)` after failed attempt
 * n, so 1 s, 2 s, 4 s, 8 s, then a dead letter; jitter is off unless asked for.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleIntervals from "effect/ScheduleIntervals"

/**
 * @since 0.1.0
 * @category models
 */
export interface RetryPolicy {
  /** The schedule stepped once per failed attempt with the failure's `Cause`; when it ends, dead letter. */
  readonly schedule: Schedule.Schedule<unknown, Cause.Cause<unknown>>
  /** A description for logs and docs, e.g. `exponential(1s, ×2, cap 5m), 5 attempts`. */
  readonly description: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Attempts in all, the first included (default 5). Must be at least 1. */
  readonly maxAttempts?: number | undefined
  /** Delay after the first failure (default 1 second). */
  readonly baseDelay?: Duration.DurationInput | undefined
  /** Largest delay (default 300 seconds). */
  readonly maxDelay?: Duration.DurationInput | undefined
  /** Scale each delay randomly to 80–120 % so many workers do not retry in lockstep (default false). */
  readonly jitter?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  maxAttempts: 5,
  baseDelay: Duration.seconds(1),
  maxDelay: Duration.seconds(300),
  jitter: false
} as const

/**
 * Exponential backoff (factor 2) from `baseDelay`, capped at `maxDelay`,
 * bounded by `maxAttempts`, optionally jittered.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): RetryPolicy => {
  const maxAttempts = Math.max(1, Math.floor(options.maxAttempts ?? defaults.maxAttempts))
  const baseDelay = Duration.decode(options.baseDelay ?? defaults.baseDelay)
  const maxDelay = Duration.decode(options.maxDelay ?? defaults.maxDelay)
  const jitter = options.jitter ?? defaults.jitter
  const capped = Schedule.exponential(baseDelay, 2).pipe(Schedule.union(Schedule.spaced(maxDelay)))
  const schedule = (jitter ? Schedule.jittered(capped) : capped).pipe(
    Schedule.intersect(Schedule.recurs(maxAttempts - 1))
  )
  return {
    schedule,
    description: `exponential(${Duration.format(baseDelay)}, ×2, cap ${Duration.format(maxDelay)})${
      jitter ? " jittered" : ""
    }, ${maxAttempts} attempts`
  }
}

/**
 * Any schedule as a retry policy: each step is one failed attempt, its delay
 * the wait before the next attempt; when it ends, the row is dead-lettered.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromSchedule = (
  schedule: Schedule.Schedule<unknown, Cause.Cause<unknown>>,
  description = "custom schedule"
): RetryPolicy => ({ schedule, description })

/**
 * The default policy (5 attempts, 1 s base, 300 s cap, no jitter).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultPolicy: RetryPolicy = make()

/**
 * ironflow's pure backoff: `min(base × 2^(attempt−1), max)` after the failed
 * 1-based `attempt`, with saturating arithmetic.
 *
 * @since 0.1.0
 * @category utils
 */
export const backoffDuration = (
  attempt: number,
  options: Pick<Options, "baseDelay" | "maxDelay"> = {}
): Duration.Duration => {
  const base = Duration.toMillis(Duration.decode(options.baseDelay ?? defaults.baseDelay))
  const max = Duration.toMillis(Duration.decode(options.maxDelay ?? defaults.maxDelay))
  const exponent = Math.max(0, attempt - 1)
  const millis = exponent >= 1024 ? Infinity : base * 2 ** exponent
  return Duration.millis(Math.min(millis, max))
}

/**
 * ironflow's `should_retry(attempt)`: whether another attempt follows failed attempt `attempt`.
 *
 * @since 0.1.0
 * @category utils
 */
export const shouldRetry = (attempt: number, maxAttempts: number = defaults.maxAttempts): boolean =>
  attempt < maxAttempts

/**
 * What follows failed attempt `attempt` (1-based) under a policy: the delay
 * before the next attempt, or `None` when the policy gives up (dead letter).
 * Steps the schedule `attempt` times, as a retry driver would have.
 *
 * @since 0.1.0
 * @category utils
 */
export const delayAfterFailure = (
  policy: RetryPolicy,
  attempt: number,
  cause: Cause.Cause<unknown>
): Effect.Effect<Option.Option<Duration.Duration>> =>
  Effect.gen(function*() {
    let now = yield* Clock.currentTimeMillis
    let state = policy.schedule.initial
    let delay: Option.Option<Duration.Duration> = Option.none()
    for (let step = 1; step <= attempt; step++) {
      const [next, , decision] = yield* policy.schedule.step(now, cause, state)
      if (ScheduleDecision.isDone(decision)) return Option.none()
      const millis = Math.max(0, ScheduleIntervals.start(decision.intervals) - now)
      delay = Option.some(Duration.millis(millis))
      state = next
      now += millis
    }
    return delay
  })

/**
 * The delays a policy produces for consecutive failures, until it gives up
 * (at most `limit` of them). Useful in tests and docs.
 *
 * @since 0.1.0
 * @category utils
 */
export const delays = (
  policy: RetryPolicy,
  limit = 100
): Effect.Effect<ReadonlyArray<Duration.Duration>> =>
  Effect.gen(function*() {
    const out: Array<Duration.Duration> = []
    for (let attempt = 1; attempt <= limit; attempt++) {
      const delay = yield* delayAfterFailure(policy, attempt, Cause.empty)
      if (Option.isNone(delay)) break
      out.push(delay.value)
    }
    return out
  })
