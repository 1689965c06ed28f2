import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Option, pipe, TestClock } from "effect"
import { Timer } from "ironflow"

const input = { type: "Timeout", order_id: "ord-1" } as const

describe("Timer", () => {
  it("after stores the delay and the input, without a key", () => {
    const timer = Timer.after("90 seconds", input)
    assert.isTrue(Duration.equals(timer.delay, Duration.seconds(90)))
    assert.strictEqual(timer.input, input)
    assert.isTrue(Option.isNone(timer.key))
  })

  it("after accepts every duration input", () => {
    assert.isTrue(Duration.equals(Timer.after(1500, input).delay, Duration.millis(1500)))
    assert.isTrue(Duration.equals(Timer.after(Duration.hours(2), input).delay, Duration.hours(2)))
    assert.isTrue(Duration.equals(Timer.after("0 millis", input).delay, Duration.zero))
  })

  it.effect("after does not read the clock: the timer holds a delay, never a fire time", () =>
    Effect.gen(function*() {
      const early = Timer.after("1 hour", input)
      yield* TestClock.adjust("3 days")
      const late = Timer.after("1 hour", input)
      assert.deepStrictEqual(Object.keys(early).sort(), ["delay", "input", "key"])
      assert.isTrue(Duration.equals(early.delay, late.delay))
      assert.deepStrictEqual(Timer.toJSON(early), Timer.toJSON(late))
    }))

  it("withKey sets the key and leaves the original timer unchanged", () => {
    const timer = Timer.after("1 hour", input)
    const keyed = Timer.withKey(timer, "payment-timeout")
    assert.deepStrictEqual(keyed.key, Option.some("payment-timeout"))
    assert.isTrue(Duration.equals(keyed.delay, timer.delay))
    assert.strictEqual(keyed.input, input)
    assert.isTrue(Option.isNone(timer.key))
    assert.deepStrictEqual(pipe(timer, Timer.withKey("payment-timeout")).key, Option.some("payment-timeout"))
  })

  it("toJSON has a {secs, nanos} delay, the input and the key", () => {
    const timer = Timer.withKey(Timer.after("90500 millis", input), "k")
    assert.deepStrictEqual(Timer.toJSON(timer), {
      delay: { secs: 90, nanos: 500_000_000 },
      input,
      key: "k"
    })
  })

  it("toJSON omits the key when there is none", () => {
    const json = Timer.toJSON(Timer.after("1 hour", input))
    assert.deepStrictEqual(json, { delay: { secs: 3600, nanos: 0 }, input })
    assert.isFalse("key" in json)
    assert.strictEqual(
      JSON.stringify(json),
      `{"delay":{"secs":3600,"nanos":0},"input":{"type":"Timeout","order_id":"ord-1"}}`
    )
  })
})
