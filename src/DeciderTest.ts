/**
 * Given-when-then tests of a workflow's pure functions, without a database:
 * given past events, when an input arrives (at a time), then the decision is
 * this (events, effects, timers, cancelled keys, or a rejection) and the state
 * after it is that. Values are compared in their stored JSON form, and a
 * mismatch fails with a message that shows what was expected and what came.
 *
 * ```ts
 * it.effect("a placed order charges the card", () =>
 *   DeciderTest.given(OrderWorkflow, [])
 *     .when(new PlaceOrder({ orderId, amount: 10, address: "1 Main St" }))
 *     .thenAccepts({
 *       events: [new OrderPlaced({ amount: 10, address: "1 Main St" })],
 *       effects: [new ChargeCard({ orderId, amount: 10 })],
 *       timers: [{ delay: "30 seconds", input: new PaymentTimedOut({ orderId }), key: "payment" }]
 *     }))
 * ```
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Decision from "./Decision.js"
import { codecsOf } from "./internal/codecs.js"
import type * as Workflow from "./Workflow.js"

/**
 * A decider expectation that did not hold; the message shows expected and actual.
 *
 * @since 0.1.0
 * @category errors
 */
export class DeciderAssertionError extends Data.TaggedError("DeciderAssertionError")<{
  readonly workflowType: string
  readonly detail: string
}> {
  override get message() {
    return `${this.workflowType}: ${this.detail}`
  }
}

/**
 * An expected timer.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExpectedTimer<I> {
  readonly delay: Duration.DurationInput
  readonly input: I
  readonly key?: string | undefined
}

/**
 * What an accepted decision must contain. Lists left out are not checked,
 * except `events`, which is required.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExpectedAccept<W extends Workflow.Any> {
  readonly events: ReadonlyArray<Workflow.Event<W>>
  readonly effects?: ReadonlyArray<Workflow.EffectOf<W>> | undefined
  readonly timers?: ReadonlyArray<ExpectedTimer<Workflow.Input<W>>> | undefined
  readonly cancelTimers?: ReadonlyArray<string> | undefined
  /** The state after the new events. */
  readonly state?: Workflow.State<W> | undefined
  /** Whether the state after the new events is terminal. */
  readonly terminal?: boolean | undefined
}

/**
 * The outcome of `when`: the decision and the states before and after.
 *
 * @since 0.1.0
 * @category models
 */
export interface When<W extends Workflow.Any> {
  /** The decision, the state it was made on, and the state after accepted events. */
  readonly run: Effect.Effect<{
    readonly decision: Decision.Decision<
      Workflow.Event<W>,
      Workflow.EffectOf<W>,
      Workflow.Input<W>,
      Workflow.Rejection<W>
    >
    readonly stateBefore: Workflow.State<W>
    readonly stateAfter: Workflow.State<W>
  }>
  /** Fails unless the input is accepted exactly as described. */
  readonly thenAccepts: (expected: ExpectedAccept<W>) => Effect.Effect<void, DeciderAssertionError>
  /** Fails unless the input is rejected with this reason. */
  readonly thenRejects: (reason: Workflow.Rejection<W>) => Effect.Effect<void, DeciderAssertionError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Given<W extends Workflow.Any> {
  /** The state after the given events. */
  readonly state: Effect.Effect<Workflow.State<W>>
  /** An input arrives; `now` defaults to the `Clock` (so `TestClock` time in tests). */
  readonly when: (input: Workflow.Input<W>, options?: { readonly now?: DateTime.DateTime.Input | undefined }) => When<W>
}

const show = (value: unknown): string => JSON.stringify(value, null, 2) ?? String(value)

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

/**
 * Starts a decider test from the workflow's initial state plus past events.
 *
 * @since 0.1.0
 * @category constructors
 */
export const given = <W extends Workflow.Any>(workflow: W, events: ReadonlyArray<Workflow.Event<W>>): Given<W> => {
  const codecs = codecsOf(workflow)
  const stateAfter = (state: unknown, more: ReadonlyArray<unknown>) => more.reduce(workflow.evolve, state)
  const initial = Effect.sync(() => stateAfter(workflow.initialState, events) as Workflow.State<W>)

  const encode = (subject: "event" | "effect" | "input" | "state", value: unknown): unknown =>
    Either.getOrElse(codecs[subject].encode(value), (detail) => ({ "<does not encode>": detail, value }))

  const fail = (detail: string) => new DeciderAssertionError({ workflowType: workflow.type, detail })

  const compare = (what: string, expected: unknown, actual: unknown) =>
    same(expected, actual)
      ? Effect.void
      : Effect.fail(fail(`${what} differ\nexpected: ${show(expected)}\nactual:   ${show(actual)}`))

  return {
    state: initial,
    when: (input, options) => {
      const run = Effect.gen(function*() {
        const stateBefore = yield* initial
        const now = DateTime.toUtc(
          options?.now !== undefined
            ? DateTime.unsafeMake(options.now)
            : DateTime.unsafeMake(yield* Clock.currentTimeMillis)
        )
        const decision = workflow.decide(now, stateBefore, input)
        const after = decision._tag === "Accept" ? stateAfter(stateBefore, decision.events) : stateBefore
        return { decision, stateBefore, stateAfter: after as Workflow.State<W> }
      })
      return {
        run,
        thenAccepts: (expected) =>
          Effect.gen(function*() {
            const { decision, stateAfter } = yield* run
            if (decision._tag === "Reject") {
              return yield* fail(
                `expected the input to be accepted, but it was rejected\nrejection: ${
                  show(encodeRejection(decision.reason))
                }`
              )
            }
            yield* compare(
              "events",
              expected.events.map((e) => encode("event", e)),
              decision.events.map((e) => encode("event", e))
            )
            if (expected.effects !== undefined) {
              yield* compare(
                "effects",
                expected.effects.map((e) => encode("effect", e)),
                decision.effects.map((e) => encode("effect", e))
              )
            }
            if (expected.timers !== undefined) {
              yield* compare(
                "timers",
                expected.timers.map((t) => ({
                  delayMillis: Duration.toMillis(Duration.decode(t.delay)),
                  input: encode("input", t.input),
                  key: t.key ?? null
                })),
                decision.timers.map((t) => ({
                  delayMillis: Duration.toMillis(t.delay),
                  input: encode("input", t.input),
                  key: Option.getOrNull(t.key)
                }))
              )
            }
            if (expected.cancelTimers !== undefined) {
              yield* compare("cancelled timer keys", expected.cancelTimers, decision.cancelTimers)
            }
            if (expected.state !== undefined) {
              yield* compare("states after the decision", encode("state", expected.state), encode("state", stateAfter))
            }
            if (expected.terminal !== undefined && workflow.isTerminal(stateAfter) !== expected.terminal) {
              return yield* fail(
                `expected the state after the decision ${expected.terminal ? "to be" : "not to be"} terminal\nstate: ${
                  show(encode("state", stateAfter))
                }`
              )
            }
          }),
        thenRejects: (reason) =>
          Effect.gen(function*() {
            const { decision } = yield* run
            if (decision._tag === "Accept") {
              return yield* fail(
                `expected a rejection, but the input was accepted\nevents: ${
                  show(decision.events.map((e) => encode("event", e)))
                }`
              )
            }
            yield* compare("rejections", encodeRejection(reason), encodeRejection(decision.reason))
          })
      }
    }
  }

  function encodeRejection(reason: unknown) {
    return Either.getOrElse(codecs.rejection.encode(reason), () => reason)
  }
}
