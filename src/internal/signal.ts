import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"

/**
 * A broadcast wake-up. A waiter first takes a ticket, then looks for work, then
 * awaits the ticket: a signal sent between the look and the wait is not lost.
 *
 * @internal
 */
export interface Signal {
  /** Wakes every current waiter. */
  readonly notify: Effect.Effect<void>
  /** Takes a ticket; the returned effect completes at the next `notify` after it was taken. */
  readonly ticket: Effect.Effect<Effect.Effect<void>>
}

/** @internal */
export const make: Effect.Effect<Signal> = Effect.sync(() => {
  let current = Deferred.unsafeMake<void>(FiberId.none)
  // Notifications nobody holds a ticket for cost nothing (hot paths notify per item).
  let ticketsOut = false
  return {
    notify: Effect.suspend(() => {
      if (!ticketsOut) return Effect.void
      ticketsOut = false
      const previous = current
      current = Deferred.unsafeMake<void>(FiberId.none)
      return Deferred.succeed(previous, undefined)
    }),
    ticket: Effect.sync(() => {
      ticketsOut = true
      return Deferred.await(current)
    })
  }
})
