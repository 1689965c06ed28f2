/**
 * The settlement decision on its own, without a database: an attempt's `Exit`
 * and the row's attempt count under a retry policy give complete, apply,
 * retry after, dead letter or release, with the `last_error` texts operators see.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, FiberId, Metric, Option, Schedule, Tracer } from "effect"
import { RetryPolicy, WorkflowMetrics } from "ironflow"
import { HandlerTimeout } from "ironflow/WorkflowError"
import * as Settlement from "../src/internal/settlement.js"

const policy = RetryPolicy.make({ maxAttempts: 3, baseDelay: "1 second" })

const attempt = (exit: Exit.Exit<Option.Option<unknown>, unknown>, attempts = 0): Settlement.Attempt => ({
  exit,
  attempts,
  policy,
  describe: Settlement.handlerError
})

const failed = (settlement: Settlement.Settlement): Settlement.Failed => {
  assert.strictEqual(settlement._tag, "Fail")
  return settlement as Settlement.Failed
}

const counter = (metric: typeof WorkflowMetrics.processed, workflowType: string) =>
  Effect.map(
    Metric.value(Metric.tagged(Metric.tagged(metric, "kind", "effect"), "workflow_type", workflowType)),
    (state) => state.count
  )

describe("Settlement", () => {
  describe("decide", () => {
    it.effect("a success without an input completes the row; with one, applies it with the ack in the work's span", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* Settlement.decide(attempt(Exit.succeed(Option.none()))), { _tag: "Complete" })
        const span = Tracer.externalSpan({ traceId: "a".repeat(32), spanId: "b".repeat(16) })
        const applied = yield* Settlement.decide({ ...attempt(Exit.succeed(Option.some("input"))), span })
        assert.strictEqual(applied._tag, "Apply")
        if (applied._tag === "Apply") {
          assert.strictEqual(applied.input, "input")
          assert.strictEqual(applied.span, span)
        }
      }))

    it.effect("an interruption releases the row, whatever the attempt count (no attempt is counted)", () =>
      Effect.gen(function*() {
        for (const attempts of [0, 2, 10]) {
          const settlement = yield* Settlement.decide(attempt(Exit.interrupt(FiberId.none), attempts))
          assert.deepStrictEqual(settlement, { _tag: "Release" }, `after ${attempts} attempts`)
        }
      }))

    it.effect("a failure is retried after the policy's delay for that attempt, then dead-lettered at its last", () =>
      Effect.gen(function*() {
        const delays = yield* RetryPolicy.delays(policy)
        assert.strictEqual(delays.length, 2, "three attempts: two retries")
        const exit = Exit.fail(new Error("card declined"))
        for (let attempts = 0; attempts < delays.length; attempts++) {
          const settlement = failed(yield* Settlement.decide(attempt(exit, attempts)))
          assert.include(settlement.error, "card declined")
          assert.strictEqual(settlement.disposition._tag, "RetryAfter")
          if (settlement.disposition._tag === "RetryAfter") {
            assert.isTrue(Duration.equals(settlement.disposition.delay, delays[attempts]), `attempt ${attempts + 1}`)
          }
          assert.isUndefined(settlement.timedOut)
        }
        const last = failed(yield* Settlement.decide(attempt(exit, delays.length)))
        assert.deepStrictEqual(last.disposition, { _tag: "DeadLetter" })
      }))

    it.effect("a timed-out attempt is a failure whose last_error is the timeout alone, marked timedOut", () =>
      Effect.gen(function*() {
        const timeout = new HandlerTimeout({ workflowType: "mail", timeoutMillis: 30_000 })
        const settlement = failed(yield* Settlement.decide(attempt(Exit.fail(timeout))))
        assert.strictEqual(settlement.error, "timed out after 30 s")
        assert.isTrue(settlement.timedOut)
        assert.strictEqual(settlement.disposition._tag, "RetryAfter")
        const dead = failed(yield* Settlement.decide(attempt(Exit.fail(timeout), 2)))
        assert.deepStrictEqual(dead.disposition, { _tag: "DeadLetter" })
        assert.isTrue(dead.timedOut)
      }))

    it.effect("a defect is a failed attempt too, under the same policy, with its trace in last_error", () =>
      Effect.gen(function*() {
        const settlement = failed(yield* Settlement.decide(attempt(Exit.die(new Error("kaput")))))
        assert.include(settlement.error, "kaput")
        assert.include(settlement.error, "at ", "a defect keeps its stack trace")
        assert.strictEqual(settlement.disposition._tag, "RetryAfter")
      }))

    it.effect("the policy sees the attempt's cause: one that retries failures only dead-letters a defect at once", () =>
      Effect.gen(function*() {
        const failuresOnly = RetryPolicy.fromSchedule(
          Schedule.spaced("1 second").pipe(Schedule.whileInput((cause: Cause.Cause<unknown>) => !Cause.isDie(cause)))
        )
        const withPolicy = (exit: Exit.Exit<Option.Option<unknown>, unknown>) =>
          Settlement.decide({ ...attempt(exit), policy: failuresOnly })
        assert.strictEqual(failed(yield* withPolicy(Exit.fail("declined"))).disposition._tag, "RetryAfter")
        assert.strictEqual(failed(yield* withPolicy(Exit.die("bug"))).disposition._tag, "DeadLetter")
      }))

    it.effect("last_error comes from the attempt's describe (limit key, timer input, routing)", () =>
      Effect.gen(function*() {
        const exit = Exit.fail(new Error("no key"))
        const decideWith = (describe: (cause: Cause.Cause<unknown>) => string) =>
          Effect.map(Settlement.decide({ ...attempt(exit), describe }), (s) => failed(s).error)
        assert.strictEqual(
          yield* decideWith(Settlement.limitKeyError),
          "the effect's limit key could not be computed: no key"
        )
        assert.strictEqual(yield* decideWith(Settlement.timerInputError), "Failed to execute timer input: no key")
        assert.strictEqual(yield* decideWith(Settlement.applyError("effect")), "Failed to route result: no key")
        assert.strictEqual(yield* decideWith(Settlement.applyError("timer")), "Failed to execute timer input: no key")
      }))
  })

  describe("texts", () => {
    it("describe: a typed failure's message, a string as it is, anything else pretty-printed", () => {
      assert.strictEqual(Settlement.describe(Cause.fail(new Error("boom"))), "boom")
      assert.strictEqual(Settlement.describe(Cause.fail("plain")), "plain")
      const structured = Cause.fail({ code: 42 })
      assert.strictEqual(Settlement.describe(structured), Cause.pretty(structured))
      const defect = Cause.die(new Error("bug"))
      assert.strictEqual(Settlement.describe(defect), Cause.pretty(defect))
      const both = Cause.sequential(Cause.fail("first"), Cause.fail("second"))
      assert.strictEqual(Settlement.describe(both), Cause.pretty(both), "several failures: the whole cause")
    })

    it("handlerError: a timeout's message alone, any other cause pretty-printed", () => {
      const timeout = Cause.fail(new HandlerTimeout({ workflowType: "mail", timeoutMillis: 90_000 }))
      assert.strictEqual(Settlement.handlerError(timeout), "timed out after 1 min 30 s")
      assert.isTrue(Option.isSome(Settlement.timeoutOf(timeout)))
      const failure = Cause.fail(new Error("card declined"))
      assert.strictEqual(Settlement.handlerError(failure), Cause.pretty(failure))
      assert.isTrue(Option.isNone(Settlement.timeoutOf(failure)))
    })

    it("an unknown workflow type is dead at once", () => {
      assert.deepStrictEqual(Settlement.unknownType("gone"), {
        _tag: "Fail",
        error: "Unknown workflow type: gone",
        disposition: { _tag: "DeadLetter" }
      })
    })
  })

  describe("ofProcessing", () => {
    it("the settlement processing returned; interrupted, a release; a defect, a retry in a second", () => {
      assert.deepStrictEqual(Settlement.ofProcessing(Exit.succeed({ _tag: "Complete" })), { _tag: "Complete" })
      assert.deepStrictEqual(Settlement.ofProcessing(Exit.interrupt(FiberId.none)), { _tag: "Release" })
      const settlement = failed(Settlement.ofProcessing(Exit.die(new Error("loop bug"))))
      assert.include(settlement.error, "loop bug")
      assert.strictEqual(settlement.disposition._tag, "RetryAfter")
      if (settlement.disposition._tag === "RetryAfter") {
        assert.strictEqual(Duration.toMillis(settlement.disposition.delay), 1000)
      }
    })
  })

  describe("report", () => {
    it.effect("counts a retried failure as failed, a dead letter as dead-lettered, a timeout as timed out", () =>
      Effect.gen(function*() {
        const type = "settlement-report"
        const before = {
          failed: yield* counter(WorkflowMetrics.failed, type),
          deadLettered: yield* counter(WorkflowMetrics.deadLettered, type),
          timedOut: yield* counter(WorkflowMetrics.timedOut, type),
          processed: yield* counter(WorkflowMetrics.processed, type)
        }
        const retry = failed(yield* Settlement.decide(attempt(Exit.fail("no"))))
        const dead = failed(
          yield* Settlement.decide(attempt(Exit.fail(new HandlerTimeout({ workflowType: type, timeoutMillis: 10 })), 2))
        )
        yield* Settlement.report("effect", type, retry)
        yield* Settlement.report("effect", type, dead)
        yield* Settlement.report("effect", type, { _tag: "Complete" })
        yield* Settlement.report("effect", type, { _tag: "Release" })
        assert.strictEqual((yield* counter(WorkflowMetrics.failed, type)) - before.failed, 1)
        assert.strictEqual((yield* counter(WorkflowMetrics.deadLettered, type)) - before.deadLettered, 1)
        assert.strictEqual((yield* counter(WorkflowMetrics.timedOut, type)) - before.timedOut, 1)
        assert.strictEqual(
          (yield* counter(WorkflowMetrics.processed, type)) - before.processed,
          0,
          "a completion is counted once committed"
        )
        yield* Settlement.countProcessed("effect", type)
        assert.strictEqual((yield* counter(WorkflowMetrics.processed, type)) - before.processed, 1)
      }))
  })
})
