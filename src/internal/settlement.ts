/**
 * What becomes of a claimed row once an attempt at it ended: the one place
 * that turns an attempt's `Exit` into complete, apply, retry after, dead
 * letter or release, and the texts stored as `last_error`. No database and no
 * state here: `decide`'s only effect is stepping the retry policy's schedule
 * (it reads the `Clock`, and `Random` when jittered); `report` records what a
 * settlement counts for (metrics, and a warning for a dead letter).
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Tracer from "effect/Tracer"
import * as RetryPolicy from "../RetryPolicy.js"
import { HandlerTimeout } from "../WorkflowError.js"
import * as Metrics from "../WorkflowMetrics.js"
import type * as WorkflowStore from "../WorkflowStore.js"

/**
 * What becomes of a claimed row once its work ran.
 *
 * @internal
 */
export type Settlement =
  | { readonly _tag: "Complete" }
  /** Done, with an input for the row's workflow: applied and acked in one transaction by the committer. */
  | {
    readonly _tag: "Apply"
    readonly input: unknown
    /** The span the work ran in (when a tracer is installed): the execute applying the input is its child. */
    readonly span?: Tracer.AnySpan | undefined
  }
  | Failed
  | { readonly _tag: "Release" }

/**
 * A failed attempt: its `last_error` and whether the row runs again.
 *
 * @internal
 */
export interface Failed {
  readonly _tag: "Fail"
  readonly error: string
  readonly disposition: WorkflowStore.FailureDisposition
  /** The attempt ran past its handler's timeout. */
  readonly timedOut?: boolean | undefined
}

/**
 * An attempt that ended, with what the decision needs to know of its row.
 *
 * @internal
 */
export interface Attempt {
  /** How the work ended; a success carries the input to apply with the ack, if any. */
  readonly exit: Exit.Exit<Option.Option<unknown>, unknown>
  /** The span the work ran in, when a tracer is installed. */
  readonly span?: Tracer.AnySpan | undefined
  /** Attempts recorded before this one (the claimed row's `attempts`). */
  readonly attempts: number
  readonly policy: RetryPolicy.RetryPolicy
  /** The `last_error` of a failure, from its cause (one of the texts below). */
  readonly describe: (cause: Cause.Cause<unknown>) => string
}

// --- last_error texts (tests and operators read them) ---

/**
 * A typed failure's message (an `Error`'s message, a string as it is);
 * anything else (defects, several failures) pretty-printed with its trace.
 *
 * @internal
 */
export const describe = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && Cause.isFailType(cause)) {
    const error = failure.value
    return error instanceof Error ? error.message : typeof error === "string" ? error : Cause.pretty(cause)
  }
  return Cause.pretty(cause)
}

/** @internal */
export const timeoutOf = (cause: Cause.Cause<unknown>): Option.Option<HandlerTimeout> =>
  Option.filter(Cause.failureOption(cause), (error): error is HandlerTimeout => error instanceof HandlerTimeout)

/**
 * A handler's failure. A timed-out attempt's `last_error` is the timeout alone
 * ("timed out after 30 s"), without a stack trace.
 *
 * @internal
 */
export const handlerError = (cause: Cause.Cause<unknown>): string =>
  Option.match(timeoutOf(cause), { onNone: () => Cause.pretty(cause), onSome: (timeout) => timeout.message })

/** @internal */
export const limitKeyError = (cause: Cause.Cause<unknown>): string =>
  `the effect's limit key could not be computed: ${describe(cause)}`

/** @internal */
export const timerInputError = (cause: Cause.Cause<unknown>): string =>
  `Failed to execute timer input: ${describe(cause)}`

/** @internal */
export const routeError = (cause: Cause.Cause<unknown>): string => `Failed to route result: ${describe(cause)}`

/**
 * An input that could not be applied with its row's ack: a handler's result
 * (effect) or a timer's input.
 *
 * @internal
 */
export const applyError = (kind: WorkflowStore.QueueKind): (cause: Cause.Cause<unknown>) => string =>
  kind === "effect" ? routeError : timerInputError

// --- Decisions ---

/**
 * Dead at once, without an attempt: claims only return registered types, so
 * this is defense in depth.
 *
 * @internal
 */
export const unknownType = (workflowType: string): Failed => ({
  _tag: "Fail",
  error: `Unknown workflow type: ${workflowType}`,
  disposition: { _tag: "DeadLetter" }
})

/**
 * Settles an attempt from its `Exit`: a success completes the row (applying
 * its input, if any, with the ack); an interruption releases it (no attempt
 * counted); a failure is retried after the policy's delay for this attempt,
 * or dead-lettered once the policy gives up. A dead letter is plain here:
 * handing it to its workflow (`onDeadLetter`) is the runtime's.
 *
 * @internal
 */
export const decide = (attempt: Attempt): Effect.Effect<Settlement> => {
  const exit = attempt.exit
  if (Exit.isSuccess(exit)) {
    return Effect.succeed(Option.match(exit.value, {
      onNone: (): Settlement => ({ _tag: "Complete" }),
      onSome: (input): Settlement => ({ _tag: "Apply", input, span: attempt.span })
    }))
  }
  if (Cause.isInterruptedOnly(exit.cause)) return Effect.succeed({ _tag: "Release" })
  const cause = exit.cause
  return Effect.map(RetryPolicy.delayAfterFailure(attempt.policy, attempt.attempts + 1, cause), (delay): Failed => {
    const failed: Failed = {
      _tag: "Fail",
      error: attempt.describe(cause),
      disposition: Option.match(delay, {
        onNone: () => ({ _tag: "DeadLetter" }),
        onSome: (delay) => ({ _tag: "RetryAfter", delay })
      })
    }
    return Option.isSome(timeoutOf(cause)) ? { ...failed, timedOut: true } : failed
  })
}

/**
 * The worker's own verdict on a row whose processing did not return a
 * settlement (processing never fails, so this is a defect): retried in a
 * second, outside the policy, since the policy's decision never ran.
 *
 * @internal
 */
export const ofProcessing = (exit: Exit.Exit<Settlement>): Settlement =>
  Exit.isSuccess(exit)
    ? exit.value
    : Cause.isInterruptedOnly(exit.cause)
    ? { _tag: "Release" }
    : { _tag: "Fail", error: Cause.pretty(exit.cause), disposition: { _tag: "RetryAfter", delay: Duration.seconds(1) } }

// --- What a settlement reports ---

const count = (metric: typeof Metrics.processed, kind: string, workflowType: string) =>
  Metric.increment(Metrics.tagged(metric, { kind, workflow_type: workflowType }))

/**
 * Counts a processed row (its outcome is in the database).
 *
 * @internal
 */
export const countProcessed = (kind: WorkflowStore.QueueKind, workflowType: string): Effect.Effect<void> =>
  count(Metrics.processed, kind, workflowType)

/**
 * The metrics (and, for a dead letter, the warning) of a settlement decided
 * for a row of `workflowType`. A completion is counted by the committer once
 * it is in the database, not here.
 *
 * @internal
 */
export const report = (
  kind: WorkflowStore.QueueKind,
  workflowType: string,
  settlement: Settlement
): Effect.Effect<void> => {
  if (settlement._tag !== "Fail") return Effect.void
  const disposition = settlement.disposition
  return Effect.zipRight(
    settlement.timedOut === true ? count(Metrics.timedOut, kind, workflowType) : Effect.void,
    disposition._tag === "RetryAfter"
      ? count(Metrics.failed, kind, workflowType)
      : Effect.zipRight(
        count(Metrics.deadLettered, kind, workflowType),
        Effect.logWarning(
          `${kind} dead-lettered after its last attempt${
            disposition._tag === "DeadLetterHandled" ? " (handed to the workflow by onDeadLetter)" : ""
          }: ${settlement.error}`
        )
      )
  )
}
