import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

/**
 * Operational waits of the runtime (poll intervals, heartbeats, bookkeeping
 * retries) run on real time, while every timestamp it writes or compares
 * comes from the `Clock` in context. Under `TestClock` the workers keep
 * looking at the database every poll interval, and `TestClock.adjust` decides
 * what is due: adjusting by a day does not step through a day of polls.
 */
const live = Clock.make()

/** @internal */
export const sleep = (duration: Duration.DurationInput): Effect.Effect<void> =>
  Effect.withClock(Effect.sleep(duration), live)

/** @internal */
export const currentTimeMillis: Effect.Effect<number> = live.currentTimeMillis

/**
 * Retries `self` with exponential backoff (real time) from `base`, capped at
 * `cap`, at most `times` retries (unbounded when absent).
 *
 * @internal
 */
export const retry = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  options: {
    readonly times?: number | undefined
    readonly base?: Duration.DurationInput | undefined
    readonly cap?: Duration.DurationInput | undefined
  } = {}
): Effect.Effect<A, E, R> => {
  const base = Duration.toMillis(Duration.decode(options.base ?? "100 millis"))
  const cap = Duration.toMillis(Duration.decode(options.cap ?? "5 seconds"))
  const attempt = (n: number): Effect.Effect<A, E, R> =>
    Effect.catchAll(self, (error) =>
      options.times !== undefined && n >= options.times
        ? Effect.fail(error)
        : Effect.zipRight(sleep(Duration.millis(Math.min(cap, base * 2 ** Math.min(n, 20)))), attempt(n + 1)))
  return attempt(0)
}

/**
 * Runs `self` forever with `interval` (real time) between runs, untraced: a
 * poll (heartbeat, announcement, gauges, clock check, retention) would
 * otherwise record a root trace every run, burying the workflows' traces.
 *
 * @internal
 */
export const spaced = <E, R>(
  self: Effect.Effect<unknown, E, R>,
  interval: Duration.DurationInput
): Effect.Effect<never, E, R> => untraced(Effect.forever(Effect.zipRight(self, sleep(interval))))

/**
 * `self` with the tracer disabled (its statements record no spans), as
 * Effect's own storage polling runs (`withTracerDisabled` in
 * `@effect/cluster`'s `SqlMessageStorage`).
 *
 * @internal
 */
export const untraced = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withTracerEnabled(self, false)

/**
 * `self`, or `onTimeout` after `duration` of real time. Works inside finalizers
 * (uninterruptible regions): the racers are made interruptible, and `self` is
 * disconnected so a hung statement does not hold shutdown.
 *
 * @internal
 */
export const timeoutTo = <A, E, R, B>(
  self: Effect.Effect<A, E, R>,
  duration: Duration.DurationInput,
  onTimeout: () => B
): Effect.Effect<A | B, E, R> =>
  Effect.raceFirst(
    Effect.interruptible(Effect.disconnect(self)),
    Effect.interruptible(Effect.as(sleep(duration), undefined)).pipe(Effect.map(onTimeout))
  )
