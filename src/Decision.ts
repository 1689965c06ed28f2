/**
 * What `decide` returns: accept the input with at least one event (plus effects,
 * timers and timer cancellations), or reject it with a typed reason.
 *
 * @since 0.1.0
 */
import type * as Array from "effect/Array"
import type * as Duration from "effect/Duration"
import { dual } from "effect/Function"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import * as Timer from "./Timer.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Decision<E, F = never, I = never, R = never> = Accept<E, F, I> | Reject<R>

/**
 * An accepted input. `events` is never empty; the builders below add effects,
 * timers and cancellations. Cancellations run before new timers are scheduled,
 * so cancelling and re-scheduling one key in one decision leaves one fresh timer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Accept<out E, out F = never, out I = never> extends Pipeable {
  readonly _tag: "Accept"
  readonly events: Array.NonEmptyReadonlyArray<E>
  readonly effects: ReadonlyArray<F>
  /**
   * Priorities given with `withEffect(effect, { priority })`, by position in
   * `effects` (missing or `undefined`: the handler's default priority, else 0).
   */
  readonly effectPriorities?: ReadonlyArray<number | undefined> | undefined
  readonly timers: ReadonlyArray<Timer.Timer<I>>
  readonly cancelTimers: ReadonlyArray<string>
}

/**
 * A rejected input: nothing is written and the caller receives
 * `ExecuteOutcome.Rejected(reason)`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Reject<out R> extends Pipeable {
  readonly _tag: "Reject"
  readonly reason: R
}

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("ironflow/Decision")

/**
 * @since 0.1.0
 * @category guards
 */
export const isDecision = (u: unknown): u is Decision<unknown, unknown, unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u

const Proto = {
  [TypeId]: TypeId,
  pipe() {
    // eslint-disable-next-line prefer-rest-params
    return pipeArguments(this, arguments)
  }
}

const makeAccept = <E, F, I>(fields: Omit<Accept<E, F, I>, "_tag" | "pipe">): Accept<E, F, I> =>
  Object.assign(Object.create(Proto), { _tag: "Accept", ...fields })

/**
 * Accepts the input with one event.
 *
 * @since 0.1.0
 * @category constructors
 */
export const accept = <E>(event: E): Accept<E> =>
  makeAccept({ events: [event], effects: [], timers: [], cancelTimers: [] })

/**
 * Accepts the input with a non-empty list of events, applied in order.
 *
 * @since 0.1.0
 * @category constructors
 */
export const acceptEvents = <const Events extends Array.NonEmptyReadonlyArray<any>>(
  events: Events
): Accept<Events[number]> => makeAccept({ events, effects: [], timers: [], cancelTimers: [] })

/**
 * Accepts the input with the given events, or returns `undefined` when there
 * are none (an accepted decision always records at least one event).
 *
 * @since 0.1.0
 * @category constructors
 */
export const tryAccept = <E>(events: Iterable<E>): Accept<E> | undefined => {
  const list = globalThis.Array.from(events)
  return list.length === 0 ? undefined : acceptEvents(list as unknown as Array.NonEmptyReadonlyArray<E>)
}

/**
 * Rejects the input with a reason.
 *
 * @since 0.1.0
 * @category constructors
 */
export const reject = <R>(reason: R): Reject<R> => Object.assign(Object.create(Proto), { _tag: "Reject", reason })

/**
 * @since 0.1.0
 * @category guards
 */
export const isAccept = <E, F, I, R>(self: Decision<E, F, I, R>): self is Accept<E, F, I> => self._tag === "Accept"

/**
 * @since 0.1.0
 * @category guards
 */
export const isReject = <E, F, I, R>(self: Decision<E, F, I, R>): self is Reject<R> => self._tag === "Reject"

// Builders are no-ops on a rejection; their precise types are declared on each export.
/**
 * The type of a decision after an effect is added: accepts gain the effect type,
 * rejections are unchanged.
 *
 * @since 0.1.0
 * @category type-level
 */
export type WithEffect<D, F2> = D extends Accept<infer E, infer F, infer I> ? Accept<E, F | F2, I> : D

/**
 * The type of a decision after a timer is added.
 *
 * @since 0.1.0
 * @category type-level
 */
export type WithTimer<D, I2> = D extends Accept<infer E, infer F, infer I> ? Accept<E, F, I | I2> : D

type AnyDecision = Decision<any, any, any, any>

const modify = (
  self: Decision<any, any, any, any>,
  f: (accept: Accept<any, any, any>) => Omit<Accept<any, any, any>, "_tag" | "pipe">
): any => (self._tag === "Reject" ? self : makeAccept(f(self)))

/**
 * Options of an effect added to a decision.
 *
 * @since 0.1.0
 * @category models
 */
export interface EffectOptions {
  /**
   * Among ready effects, higher priority is claimed first (default: the
   * handler's `priority`, else 0; equal priorities run in creation order).
   */
  readonly priority?: number | undefined
}

const addEffects = (
  a: Accept<any, any, any>,
  effects: ReadonlyArray<unknown>,
  options: EffectOptions | undefined
): Omit<Accept<any, any, any>, "_tag" | "pipe"> => {
  const priority = options?.priority
  if (priority === undefined && a.effectPriorities === undefined) return { ...a, effects: [...a.effects, ...effects] }
  const before = a.effectPriorities ?? []
  const priorities: Array<number | undefined> = a.effects.map((_, i) => before[i])
  for (let i = 0; i < effects.length; i++) priorities.push(priority)
  return { ...a, effects: [...a.effects, ...effects], effectPriorities: priorities }
}

/**
 * Adds an effect, optionally with a priority. A no-op on a rejection.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withEffect: {
  <F2>(effect: F2, options?: EffectOptions): <D extends AnyDecision>(self: D) => WithEffect<D, F2>
  <D extends AnyDecision, F2>(self: D, effect: F2, options?: EffectOptions): WithEffect<D, F2>
} = dual(
  (args) => isDecision(args[0]),
  <E, F, I, R, F2>(self: Decision<E, F, I, R>, effect: F2, options?: EffectOptions): Decision<E, F | F2, I, R> =>
    modify(self, (a) => addEffects(a, [effect], options))
)

/**
 * Adds several effects, optionally all with one priority. A no-op on a
 * rejection.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withEffects: {
  <F2>(effects: Iterable<F2>, options?: EffectOptions): <D extends AnyDecision>(self: D) => WithEffect<D, F2>
  <D extends AnyDecision, F2>(self: D, effects: Iterable<F2>, options?: EffectOptions): WithEffect<D, F2>
} = dual(
  (args) => isDecision(args[0]),
  <E, F, I, R, F2>(
    self: Decision<E, F, I, R>,
    effects: Iterable<F2>,
    options?: EffectOptions
  ): Decision<E, F | F2, I, R> => modify(self, (a) => addEffects(a, globalThis.Array.from(effects), options))
)

/**
 * Adds a timer. A no-op on a rejection.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withTimer: {
  <I2>(timer: Timer.Timer<I2>): <D extends AnyDecision>(self: D) => WithTimer<D, I2>
  <D extends AnyDecision, I2>(self: D, timer: Timer.Timer<I2>): WithTimer<D, I2>
} = dual(
  2,
  <E, F, I, R, I2>(self: Decision<E, F, I, R>, timer: Timer.Timer<I2>): Decision<E, F, I | I2, R> =>
    modify(self, (a) => ({ ...a, timers: [...a.timers, timer] }))
)

/**
 * Adds several timers. A no-op on a rejection.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withTimers: {
  <I2>(timers: Iterable<Timer.Timer<I2>>): <D extends AnyDecision>(self: D) => WithTimer<D, I2>
  <D extends AnyDecision, I2>(self: D, timers: Iterable<Timer.Timer<I2>>): WithTimer<D, I2>
} = dual(
  2,
  <E, F, I, R, I2>(self: Decision<E, F, I, R>, timers: Iterable<Timer.Timer<I2>>): Decision<E, F, I | I2, R> =>
    modify(self, (a) => ({ ...a, timers: [...a.timers, ...timers] }))
)

/**
 * Adds a timer that delivers `input` after `delay`, optionally under a key
 * and with a priority (among due timers, higher fires first).
 * A no-op on a rejection.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withTimerAfter: {
  <I2>(
    delay: Duration.DurationInput,
    input: I2,
    options?: { readonly key?: string | undefined; readonly priority?: number | undefined }
  ): <D extends AnyDecision>(self: D) => WithTimer<D, I2>
  <D extends AnyDecision, I2>(
    self: D,
    delay: Duration.DurationInput,
    input: I2,
    options?: { readonly key?: string | undefined; readonly priority?: number | undefined }
  ): WithTimer<D, I2>
} = dual(
  (args) => isDecision(args[0]),
  <E, F, I, R, I2>(
    self: Decision<E, F, I, R>,
    delay: Duration.DurationInput,
    input: I2,
    options?: { readonly key?: string | undefined; readonly priority?: number | undefined }
  ): Decision<E, F, I | I2, R> => {
    const timer = Timer.after(delay, input)
    const keyed = options?.key === undefined ? timer : Timer.withKey(timer, options.key)
    const prioritized = options?.priority === undefined ? keyed : Timer.withPriority(keyed, options.priority)
    return modify(self, (a) => ({ ...a, timers: [...a.timers, prioritized] }))
  }
)

/**
 * Cancels the pending timer with this key on the instance (unknown keys are
 * ignored). A no-op on a rejection.
 *
 * @since 0.1.0
 * @category combinators
 */
export const cancelTimer: {
  (key: string): <D extends AnyDecision>(self: D) => D
  <D extends AnyDecision>(self: D, key: string): D
} = dual(
  2,
  <E, F, I, R>(self: Decision<E, F, I, R>, key: string): Decision<E, F, I, R> =>
    modify(self, (a) => ({ ...a, cancelTimers: [...a.cancelTimers, key] }))
)

/**
 * Cancels the pending timers with these keys. A no-op on a rejection.
 *
 * @since 0.1.0
 * @category combinators
 */
export const cancelTimers: {
  (keys: Iterable<string>): <D extends AnyDecision>(self: D) => D
  <D extends AnyDecision>(self: D, keys: Iterable<string>): D
} = dual(
  2,
  <E, F, I, R>(self: Decision<E, F, I, R>, keys: Iterable<string>): Decision<E, F, I, R> =>
    modify(self, (a) => ({ ...a, cancelTimers: [...a.cancelTimers, ...keys] }))
)
