/**
 * The result of executing one input. Rejections and completed instances are
 * outcomes, not errors: the error channel is kept for framework failures.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import { dual } from "effect/Function"

/**
 * - `Accepted`: events appended, effects enqueued, timers scheduled.
 * - `Rejected`: `decide` rejected the input; nothing was written.
 * - `AlreadyCompleted`: the instance is terminal; `decide` was not called.
 *
 * @since 0.1.0
 * @category models
 */
export type ExecuteOutcome<R> = Data.TaggedEnum<{
  Accepted: { readonly eventsAppended: number }
  Rejected: { readonly reason: R }
  AlreadyCompleted: {}
}>

interface ExecuteOutcomeDefinition extends Data.TaggedEnum.WithGenerics<1> {
  readonly taggedEnum: ExecuteOutcome<this["A"]>
}

const constructors = Data.taggedEnum<ExecuteOutcomeDefinition>()

/**
 * @since 0.1.0
 * @category constructors
 */
export const Accepted: (args: { readonly eventsAppended: number }) => ExecuteOutcome<never> = constructors.Accepted

/**
 * @since 0.1.0
 * @category constructors
 */
export const Rejected = <R>(reason: R): ExecuteOutcome<R> => constructors.Rejected({ reason })

/**
 * @since 0.1.0
 * @category constructors
 */
export const AlreadyCompleted: ExecuteOutcome<never> = constructors.AlreadyCompleted()

/**
 * @since 0.1.0
 * @category pattern matching
 */
export const match = constructors.$match

/**
 * @since 0.1.0
 * @category guards
 */
export const isAccepted = constructors.$is("Accepted")

/**
 * @since 0.1.0
 * @category guards
 */
export const isRejected = constructors.$is("Rejected")

/**
 * @since 0.1.0
 * @category guards
 */
export const isAlreadyCompleted = constructors.$is("AlreadyCompleted")

/**
 * Transforms the rejection payload.
 *
 * @since 0.1.0
 * @category combinators
 */
export const map: {
  <R, R2>(f: (reason: R) => R2): (self: ExecuteOutcome<R>) => ExecuteOutcome<R2>
  <R, R2>(self: ExecuteOutcome<R>, f: (reason: R) => R2): ExecuteOutcome<R2>
} = dual(
  2,
  <R, R2>(self: ExecuteOutcome<R>, f: (reason: R) => R2): ExecuteOutcome<R2> =>
    self._tag === "Rejected" ? Rejected(f(self.reason)) : self
)

/**
 * Transforms the rejection payload with a function that may fail (for example
 * decoding a JSON rejection back into its typed form).
 *
 * @since 0.1.0
 * @category combinators
 */
export const tryMap: {
  <R, R2, E>(f: (reason: R) => Either.Either<R2, E>): (self: ExecuteOutcome<R>) => Either.Either<ExecuteOutcome<R2>, E>
  <R, R2, E>(self: ExecuteOutcome<R>, f: (reason: R) => Either.Either<R2, E>): Either.Either<ExecuteOutcome<R2>, E>
} = dual(
  2,
  <R, R2, E>(self: ExecuteOutcome<R>, f: (reason: R) => Either.Either<R2, E>): Either.Either<ExecuteOutcome<R2>, E> =>
    self._tag === "Rejected" ? Either.map(f(self.reason), Rejected) : Either.right(self)
)
