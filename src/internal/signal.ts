import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import type { Signal } from "../WorkflowStore.js"

/** @internal */
export type { Signal }

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
