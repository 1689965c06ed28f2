/**
 * Concurrency and rate limits of effects, as the effect workers see them:
 * admission after each claim, releases of waiting rows after settlements and
 * on a period. It holds no fiber (the workers call it), so there is nothing
 * to shut down; what it remembers is per claimed row and forgotten once the
 * row is settled.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as WorkflowRegistry from "../WorkflowRegistry.js"
import type { Admission, ClaimedItem, WorkflowStore } from "../WorkflowStore.js"
import type * as Worker from "./worker.js"

/**
 * The hooks of an effect worker (none when no handler declares a limit), and
 * the causes of rows whose limit key could not be computed.
 *
 * @internal
 */
export interface Limits {
  readonly hooks: Pick<Worker.WorkerOptions, "admit" | "beforeClaim" | "onSettled">
  /**
   * The cause of a claimed row whose limit key could not be computed (its
   * attempt fails: retried, then dead-lettered), taken once.
   */
  readonly takeKeyFailure: (id: string) => Option.Option<unknown>
}

const logNotReleased = (error: unknown) => Effect.logDebug("could not release effects waiting for a slot", error)

/**
 * Every limit is looked at on this period (by `Clock` time): slots of leases
 * that expired, rate windows that moved on. A rate limit is looked at ten
 * times per window, at most every 50 ms.
 */
const releasePeriod = (limited: ReadonlyArray<WorkflowRegistry.Entry>) =>
  Math.max(
    50,
    Math.min(1000, ...limited.flatMap((entry) => entry.ratePerMillis === undefined ? [] : [entry.ratePerMillis / 10]))
  )

/** @internal */
export const make = (
  store: WorkflowStore["Type"],
  registry: WorkflowRegistry.WorkflowRegistry["Type"]
): Limits => {
  const limited = registry.types.flatMap((type) =>
    Option.toArray(Option.filter(registry.get(type), (entry) => entry.limited))
  )
  const keyFailures = new Map<string, unknown>()
  // The concurrency limit of each admitted row, to release waiting rows once its slot is free.
  const slotOf = new Map<string, string>()

  const admit = (lockedBy: string, items: ReadonlyArray<ClaimedItem>) =>
    Effect.gen(function*() {
      const admissions: Array<Admission> = []
      for (const item of items) {
        const entry = registry.get(item.workflowType)
        if (Option.isNone(entry) || !entry.value.limited) continue
        const admission = entry.value.admission(item.id, item.payload)
        if (Either.isLeft(admission)) keyFailures.set(item.id, admission.left)
        else admissions.push(admission.right)
      }
      if (admissions.length === 0) return items
      const admitted = new Set(
        yield* store.admit(lockedBy, admissions).pipe(
          Effect.catchAll((error) =>
            Effect.as(Effect.logWarning("could not admit limited effects; their leases will expire", error), [])
          )
        )
      )
      const underLimit = new Set<string>()
      for (const admission of admissions) {
        underLimit.add(admission.id)
        if (admitted.has(admission.id) && admission.concurrency !== undefined) {
          slotOf.set(admission.id, admission.concurrency.name)
        }
      }
      return items.filter((item) => !underLimit.has(item.id) || admitted.has(item.id))
    })

  const onSettled = (items: ReadonlyArray<ClaimedItem>) =>
    Effect.suspend(() => {
      const names = new Set<string>()
      for (const item of items) {
        const name = slotOf.get(item.id)
        if (name !== undefined) {
          slotOf.delete(item.id)
          names.add(name)
        }
        keyFailures.delete(item.id)
      }
      return names.size === 0 ? Effect.void : store.releaseWaiting(Array.from(names)).pipe(
        Effect.catchAll(logNotReleased),
        Effect.asVoid
      )
    })

  const releaseEvery = releasePeriod(limited)
  let releasedAt = Number.NEGATIVE_INFINITY
  const beforeClaim = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    if (now - releasedAt < releaseEvery) return
    releasedAt = now
    yield* store.releaseWaiting().pipe(Effect.catchAll(logNotReleased))
  })

  return {
    hooks: limited.length === 0 ? {} : { admit, beforeClaim, onSettled },
    takeKeyFailure: (id) => {
      if (!keyFailures.has(id)) return Option.none()
      const cause = keyFailures.get(id)
      keyFailures.delete(id)
      return Option.some(cause)
    }
  }
}
