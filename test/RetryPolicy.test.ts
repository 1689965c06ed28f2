import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Option, Schedule } from "effect"
import { RetryPolicy } from "ironflow"

const seconds = (delays: ReadonlyArray<Duration.Duration>) => delays.map((d) => Duration.toSeconds(d))
const millis = (delays: ReadonlyArray<Duration.Duration>) => delays.map((d) => Duration.toMillis(d))

describe("RetryPolicy", () => {
  it("defaults: 5 attempts, 1 s base delay, 300 s max delay, no jitter", () => {
    assert.strictEqual(RetryPolicy.defaults.maxAttempts, 5)
    assert.isTrue(Duration.equals(RetryPolicy.defaults.baseDelay, Duration.seconds(1)))
    assert.isTrue(Duration.equals(RetryPolicy.defaults.maxDelay, Duration.seconds(300)))
    assert.isFalse(RetryPolicy.defaults.jitter)
    assert.include(RetryPolicy.make().description, "5 attempts")
  })

  it.effect("the default policy waits 1, 2, 4, 8 s and then gives up", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(seconds(yield* RetryPolicy.delays(RetryPolicy.make())), [1, 2, 4, 8])
      assert.deepStrictEqual(seconds(yield* RetryPolicy.delays(RetryPolicy.defaultPolicy)), [1, 2, 4, 8])
    }))

  it.effect("delayAfterFailure: a delay after failed attempts 1..4, none (dead letter) after the 5th", () =>
    Effect.gen(function*() {
      const policy = RetryPolicy.make()
      const cause = Cause.fail("boom")
      for (const [attempt, expected] of [[1, 1], [2, 2], [3, 4], [4, 8]] as const) {
        const delay = yield* RetryPolicy.delayAfterFailure(policy, attempt, cause)
        assert.deepStrictEqual(Option.map(delay, Duration.toSeconds), Option.some(expected), `attempt ${attempt}`)
      }
      assert.isTrue(Option.isNone(yield* RetryPolicy.delayAfterFailure(policy, 5, cause)))
    }))

  it.effect("maxAttempts counts the first attempt", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(seconds(yield* RetryPolicy.delays(RetryPolicy.make({ maxAttempts: 3 }))), [1, 2])
      assert.deepStrictEqual(
        yield* RetryPolicy.delays(RetryPolicy.make({ maxAttempts: 1 })),
        [],
        "one attempt: no retry"
      )
    }))

  it.effect("the test configuration: base 50 ms, max 200 ms, 3 attempts", () =>
    Effect.gen(function*() {
      const policy = RetryPolicy.make({ maxAttempts: 3, baseDelay: "50 millis", maxDelay: "200 millis" })
      assert.deepStrictEqual(millis(yield* RetryPolicy.delays(policy)), [50, 100])
    }))

  it.effect("delays are capped at maxDelay", () =>
    Effect.gen(function*() {
      const policy = RetryPolicy.make({ maxAttempts: 10, maxDelay: "60 seconds" })
      assert.deepStrictEqual(seconds(yield* RetryPolicy.delays(policy)), [1, 2, 4, 8, 16, 32, 60, 60, 60])
    }))

  it.effect("jitter scales each delay within 80-120 %", () =>
    Effect.gen(function*() {
      const delays = millis(yield* RetryPolicy.delays(RetryPolicy.make({ jitter: true })))
      assert.strictEqual(delays.length, 4)
      for (const [i, delay] of delays.entries()) {
        const nominal = 1000 * 2 ** i
        assert.isAtLeast(delay, nominal * 0.8)
        assert.isAtMost(delay, nominal * 1.2)
      }
    }))

  it.effect("any schedule can be a retry policy", () =>
    Effect.gen(function*() {
      const policy = RetryPolicy.fromSchedule(Schedule.spaced("3 seconds").pipe(Schedule.intersect(Schedule.recurs(2))))
      assert.deepStrictEqual(seconds(yield* RetryPolicy.delays(policy)), [3, 3])
    }))

  describe("backoffDuration", () => {
    it("doubles from the base delay: 1, 2, 4, 8 s after failed attempts 1-4", () => {
      assert.deepStrictEqual([1, 2, 3, 4].map((n) => Duration.toSeconds(RetryPolicy.backoffDuration(n))), [1, 2, 4, 8])
    })

    it("the 300 s cap first applies at attempt 10", () => {
      assert.strictEqual(Duration.toSeconds(RetryPolicy.backoffDuration(9)), 256)
      assert.strictEqual(Duration.toSeconds(RetryPolicy.backoffDuration(10)), 300)
    })

    it("capped at 60 s for attempt 10 with a max delay of 60 s", () => {
      assert.isTrue(
        Duration.equals(RetryPolicy.backoffDuration(10, { maxDelay: Duration.seconds(60) }), Duration.seconds(60))
      )
    })

    it("saturates instead of overflowing", () => {
      for (const attempt of [64, 1_024, 1_000_000]) {
        assert.isTrue(
          Duration.equals(RetryPolicy.backoffDuration(attempt), Duration.seconds(300)),
          `attempt ${attempt}`
        )
      }
    })

    it("uses the given base delay", () => {
      assert.strictEqual(Duration.toMillis(RetryPolicy.backoffDuration(3, { baseDelay: "50 millis" })), 200)
    })
  })

  describe("shouldRetry", () => {
    it("true for attempts 1 and 2, false for 3, with max 3", () => {
      assert.isTrue(RetryPolicy.shouldRetry(1, 3))
      assert.isTrue(RetryPolicy.shouldRetry(2, 3))
      assert.isFalse(RetryPolicy.shouldRetry(3, 3))
    })

    it("uses 5 attempts by default", () => {
      assert.isTrue(RetryPolicy.shouldRetry(4))
      assert.isFalse(RetryPolicy.shouldRetry(5))
    })
  })
})
