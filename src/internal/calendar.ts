import * as Cron from "effect/Cron"
import * as Either from "effect/Either"

/**
 * The calendar of a schedule, compiled: the latest tick at or before a time,
 * the first tick strictly after a time, and the ticks due between two times
 * under a catch-up policy. Cron ticks fall on whole seconds (Effect's `Cron`,
 * time zone aware); interval ticks on multiples of the interval since the Unix
 * epoch, so every process computes the same ticks.
 *
 * @internal
 */
export interface Calendar {
  /** The latest tick at or before `at` (epoch ms), if any. */
  readonly latestAtOrBefore: (at: number) => number | undefined
  /** The first tick strictly after `at` (epoch ms), if any. */
  readonly firstAfter: (at: number) => number | undefined
  /** The latest tick strictly before `at` (epoch ms), if any. */
  readonly before: (at: number) => number | undefined
}

/** @internal */
export type CatchUp =
  | { readonly _tag: "Skip" }
  | { readonly _tag: "Latest" }
  | { readonly _tag: "All"; readonly limit: number }

// Cron's stepping gives up on expressions that never match (a 30th of February): no tick, never an exception.
const attempt = (f: () => Date): number | undefined => {
  try {
    const t = f().getTime()
    return Number.isFinite(t) ? t : undefined
  } catch {
    return undefined
  }
}

/** @internal */
export const cron = (expression: string, timeZone: string | undefined): Either.Either<Calendar, string> => {
  const parsed = Cron.parse(expression, timeZone)
  if (Either.isLeft(parsed)) {
    return Either.left(`${parsed.left.message}${parsed.left.input === undefined ? "" : `: ${parsed.left.input}`}`)
  }
  const c = parsed.right
  const second = (at: number) => Math.floor(at / 1000) * 1000
  return Either.right({
    // `Cron.prev` is strictly before its start and drops milliseconds: start one second after the whole second.
    latestAtOrBefore: (at) => attempt(() => Cron.prev(c, new Date(second(at) + 1000))),
    firstAfter: (at) => attempt(() => Cron.next(c, new Date(at))),
    before: (at) => attempt(() => Cron.prev(c, new Date(at)))
  })
}

/** @internal */
export const interval = (millis: number): Calendar => ({
  latestAtOrBefore: (at) => Math.floor(at / millis) * millis,
  firstAfter: (at) => (Math.floor(at / millis) + 1) * millis,
  before: (at) => (Math.ceil(at / millis) - 1) * millis
})

/**
 * The ticks to fire, oldest first, when ticks from `from` on (inclusive) are
 * due at `now`: `Skip` only the latest one, and only if it is at most
 * `graceMillis` late; `Latest` the latest one; `All` the `limit` latest ones.
 *
 * @internal
 */
export const dueTicks = (
  calendar: Calendar,
  from: number,
  now: number,
  catchUp: CatchUp,
  graceMillis: number
): ReadonlyArray<number> => {
  const latest = calendar.latestAtOrBefore(now)
  if (latest === undefined || latest < from) return []
  switch (catchUp._tag) {
    case "Skip":
      return now - latest <= graceMillis ? [latest] : []
    case "Latest":
      return [latest]
    case "All": {
      const ticks = [latest]
      while (ticks.length < catchUp.limit) {
        const previous = calendar.before(ticks[ticks.length - 1])
        if (previous === undefined || previous < from) break
        ticks.push(previous)
      }
      return ticks.reverse()
    }
  }
}
