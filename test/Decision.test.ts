import { assert, describe, it } from "@effect/vitest"
import { Duration, Option, pipe } from "effect"
import { Decision, Timer } from "ironflow"

type Event = { readonly type: "Created" | "Paid" | "Shipped" }
type Effect = { readonly type: "SendEmail" | "Charge"; readonly to?: string }
type Input = { readonly type: "Timeout" | "Reminder" }

const created: Event = { type: "Created" }
const paid: Event = { type: "Paid" }
const shipped: Event = { type: "Shipped" }
const email: Effect = { type: "SendEmail", to: "a@example.com" }
const charge: Effect = { type: "Charge" }
const timeout: Input = { type: "Timeout" }
const reminder: Input = { type: "Reminder" }

/** The accepted decision, failing the test on a rejection. */
const accepted = <E, F, I, R>(decision: Decision.Decision<E, F, I, R>): Decision.Accept<E, F, I> => {
  assert.isTrue(Decision.isAccept(decision), "expected an accepted decision")
  return decision as Decision.Accept<E, F, I>
}

describe("Decision", () => {
  describe("constructors", () => {
    it("accept records one event and nothing else", () => {
      const decision = Decision.accept(created)
      assert.strictEqual(decision._tag, "Accept")
      assert.deepStrictEqual(decision.events, [created])
      assert.deepStrictEqual(decision.effects, [])
      assert.deepStrictEqual(decision.timers, [])
      assert.deepStrictEqual(decision.cancelTimers, [])
      assert.isTrue(Decision.isAccept(decision))
      assert.isFalse(Decision.isReject(decision))
      assert.isTrue(Decision.isDecision(decision))
    })

    it("acceptEvents keeps the events in order", () => {
      const decision = Decision.acceptEvents([created, paid, shipped])
      assert.deepStrictEqual(decision.events, [created, paid, shipped])
    })

    it("tryAccept accepts a non-empty iterable in order", () => {
      const fromSet = Decision.tryAccept(new Set([created, paid]))
      assert.isDefined(fromSet)
      assert.deepStrictEqual(fromSet!.events, [created, paid])
      function* generate() {
        yield shipped
        yield created
      }
      assert.deepStrictEqual(Decision.tryAccept(generate())!.events, [shipped, created])
    })

    it("tryAccept returns undefined when there are no events", () => {
      assert.isUndefined(Decision.tryAccept([]))
      assert.isUndefined(Decision.tryAccept(new Set<Event>()))
    })

    it("reject carries its reason", () => {
      const decision = Decision.reject("insufficient funds")
      assert.strictEqual(decision._tag, "Reject")
      assert.strictEqual(decision.reason, "insufficient funds")
      assert.isTrue(Decision.isReject(decision))
      assert.isFalse(Decision.isAccept(decision))
      assert.isTrue(Decision.isDecision(decision))
    })

    it("isDecision is false for other values", () => {
      assert.isFalse(Decision.isDecision({ _tag: "Accept", events: [created] }))
      assert.isFalse(Decision.isDecision(null))
      assert.isFalse(Decision.isDecision("Accept"))
    })
  })

  describe("builders", () => {
    it("single event with effects", () => {
      const decision = accepted(pipe(Decision.accept(created), Decision.withEffect(email), Decision.withEffect(charge)))
      assert.deepStrictEqual(decision.events, [created])
      assert.deepStrictEqual(decision.effects, [email, charge])
    })

    it("effects batch", () => {
      const decision = accepted(Decision.withEffects(Decision.accept(created), [email, charge, email]))
      assert.deepStrictEqual(decision.effects, [email, charge, email])
    })

    it("withEffect and withEffects append after existing effects", () => {
      const decision = accepted(pipe(
        Decision.accept(created),
        Decision.withEffect(charge),
        Decision.withEffects([email, email])
      ))
      assert.deepStrictEqual(decision.effects, [charge, email, email])
    })

    it("timer after", () => {
      const decision = accepted(Decision.withTimerAfter(Decision.accept(created), "30 minutes", timeout))
      assert.strictEqual(decision.timers.length, 1)
      const [timer] = decision.timers
      assert.isTrue(Duration.equals(timer.delay, Duration.minutes(30)))
      assert.deepStrictEqual(timer.input, timeout)
      assert.isTrue(Option.isNone(timer.key))
    })

    it("timer after with a key (data-last)", () => {
      const decision = accepted(
        pipe(Decision.accept(created), Decision.withTimerAfter(1000, reminder, { key: "remind" }))
      )
      const [timer] = decision.timers
      assert.isTrue(Duration.equals(timer.delay, Duration.seconds(1)))
      assert.deepStrictEqual(timer.key, Option.some("remind"))
    })

    it("direct timer with key", () => {
      const timer = Timer.withKey(Timer.after("1 hour", timeout), "payment-timeout")
      const decision = accepted(Decision.withTimer(Decision.accept(created), timer))
      assert.deepStrictEqual(decision.timers, [timer])
    })

    it("timers batch and multiple timers keep their order", () => {
      const first = Timer.after("1 minute", timeout)
      const second = Timer.after("2 minutes", reminder)
      const third = Timer.after("3 minutes", timeout)
      const decision = accepted(pipe(
        Decision.accept(created),
        Decision.withTimers([first, second]),
        Decision.withTimer(third)
      ))
      assert.deepStrictEqual(decision.timers, [first, second, third])
    })

    it("cancel timer(s)", () => {
      const decision = accepted(pipe(
        Decision.accept(created),
        Decision.cancelTimer("a"),
        Decision.cancelTimers(["b", "c"]),
        Decision.cancelTimers(new Set(["d"]))
      ))
      assert.deepStrictEqual(decision.cancelTimers, ["a", "b", "c", "d"])
    })

    it("effect and timer together", () => {
      const decision = accepted(pipe(
        Decision.acceptEvents([created, paid]),
        Decision.withEffect(email),
        Decision.withTimerAfter("1 day", reminder, { key: "reminder" }),
        Decision.cancelTimer("payment-timeout")
      ))
      assert.deepStrictEqual(decision.events, [created, paid])
      assert.deepStrictEqual(decision.effects, [email])
      assert.strictEqual(decision.timers.length, 1)
      assert.deepStrictEqual(decision.cancelTimers, ["payment-timeout"])
    })

    it("builders return a new decision and leave the original unchanged", () => {
      const original = Decision.accept(created)
      const extended = accepted(pipe(
        original,
        Decision.withEffect(email),
        Decision.withTimerAfter("1 hour", timeout),
        Decision.cancelTimer("k")
      ))
      assert.notStrictEqual(extended, original)
      assert.deepStrictEqual(original.effects, [])
      assert.deepStrictEqual(original.timers, [])
      assert.deepStrictEqual(original.cancelTimers, [])
      assert.deepStrictEqual(extended.events, [created])
    })

    it("every builder is a silent no-op on a rejection", () => {
      const rejected = Decision.reject("no")
      const results = [
        Decision.withEffect(rejected, email),
        Decision.withEffects(rejected, [email, charge]),
        Decision.withTimer(rejected, Timer.after("1 hour", timeout)),
        Decision.withTimers(rejected, [Timer.after("1 hour", timeout)]),
        Decision.withTimerAfter(rejected, "1 hour", timeout, { key: "k" }),
        Decision.cancelTimer(rejected, "k"),
        Decision.cancelTimers(rejected, ["k", "l"]),
        pipe(
          rejected,
          Decision.withEffect(email),
          Decision.withTimerAfter("1 hour", timeout),
          Decision.cancelTimer("k")
        )
      ]
      for (const result of results) {
        assert.isTrue(Decision.isReject(result))
        assert.deepStrictEqual({ ...result }, { _tag: "Reject", reason: "no" })
      }
    })
  })
})
