/**
 * A timer is an input delivered to its workflow after a delay.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import { dual } from "effect/Function"
import * as Option from "effect/Option"

/**
 * A future input. The fire time is computed when the decision that carries the
 * timer is committed (`now + delay`), so building a timer never reads a clock.
 *
 * A keyed timer is unique per instance and key among pending timers: scheduling
 * the same key again replaces the pending one (and resets its retry state), and
 * `Decision.cancelTimer(key)` cancels it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Timer<out I> {
  readonly delay: Duration.Duration
  readonly input: I
  readonly key: Option.Option<string>
  /** Among due timers, higher priority fires first (default 0). */
  readonly priority?: number | undefined
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const after = <I>(delay: Duration.DurationInput, input: I): Timer<I> => ({
  delay: Duration.decode(delay),
  input,
  key: Option.none()
})

/**
 * @since 0.1.0
 * @category combinators
 */
export const withKey: {
  (key: string): <I>(self: Timer<I>) => Timer<I>
  <I>(self: Timer<I>, key: string): Timer<I>
} = dual(2, <I>(self: Timer<I>, key: string): Timer<I> => ({ ...self, key: Option.some(key) }))

/**
 * Sets the timer's priority: among due timers, higher priority is claimed
 * first (default 0; equal priorities fire in due order).
 *
 * @since 0.1.0
 * @category combinators
 */
export const withPriority: {
  (priority: number): <I>(self: Timer<I>) => Timer<I>
  <I>(self: Timer<I>, priority: number): Timer<I>
} = dual(2, <I>(self: Timer<I>, priority: number): Timer<I> => ({ ...self, priority }))

/**
 * The serialized form used by ironflow: `delay` as `{ secs, nanos }`, the
 * input, and `key` only when present.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toJSON = <I>(self: Timer<I>): { delay: { secs: number; nanos: number }; input: I; key?: string } => {
  const [secs, nanos] = Duration.toHrTime(self.delay)
  const base = { delay: { secs, nanos }, input: self.input }
  return Option.isSome(self.key) ? { ...base, key: self.key.value } : base
}
