/**
 * The fixture workflows of ironflow's test suite (spec §7), as factories
 * parameterised by workflow type name: every test defines its own type, so
 * tests sharing one database never see each other's rows.
 *
 * - `makeTestWorkflow`: Ping / Increment / Start / Completed / Failed / Stop /
 *   ForceReject, effects `Process{mode}` and `Notify{message}`, terminal when
 *   stopped; `makeTestHandler` injects the failures selected by `mode`.
 * - `makeEffectlessWorkflow`: Increment → Incremented{value + 1}, no effects.
 * - `makeTimerTestWorkflow`: Start schedules a keyed `Timeout` timer and a
 *   `Process` effect; `makeTimerTestHandler` answers every effect with
 *   `Complete{cancelTimerKey: "timeout"}`, which cancels the timer.
 * - `makeUniqueKeyWorkflow`: Open{key} holds a unique key until Close.
 */
import { Data, Effect, Option, Schema } from "effect"
import { Decision, Timer, Workflow } from "ironflow"

// =============================================================================
// TestWorkflow
// =============================================================================

/** How the handler of a `Process` effect behaves. */
export const EffectMode = Schema.Literal("FireAndForget", "RouteResult", "TransientFailure", "PermanentFailure")
export type EffectMode = typeof EffectMode.Type

/** Produces `Pinged`, nothing else. */
export class Ping extends Schema.TaggedClass<Ping>("TestWorkflow/Ping")("Ping", {
  id: Schema.String
}) {}

/** Produces `Incremented{counter + 1}`, and a `Notify` effect when `withEffect`. */
export class Increment extends Schema.TaggedClass<Increment>("TestWorkflow/Increment")("Increment", {
  id: Schema.String,
  withEffect: Schema.Boolean
}) {}

/** Produces `Started{mode}` and a `Process{mode}` effect. */
export class Start extends Schema.TaggedClass<Start>("TestWorkflow/Start")("Start", {
  id: Schema.String,
  mode: EffectMode
}) {}

/** A result routed back by the handler; produces `Completed{result}`. */
export class CompleteWith extends Schema.TaggedClass<CompleteWith>("TestWorkflow/CompleteWith")("Completed", {
  id: Schema.String,
  result: Schema.String
}) {}

/** A failure routed back by the handler; produces `Failed{error}`. */
export class FailWith extends Schema.TaggedClass<FailWith>("TestWorkflow/FailWith")("Failed", {
  id: Schema.String,
  error: Schema.String
}) {}

/** Produces `Stopped`, which makes the instance terminal. */
export class Stop extends Schema.TaggedClass<Stop>("TestWorkflow/Stop")("Stop", {
  id: Schema.String
}) {}

/** Always rejected with `reason`. */
export class ForceReject extends Schema.TaggedClass<ForceReject>("TestWorkflow/ForceReject")("ForceReject", {
  id: Schema.String,
  reason: Schema.String
}) {}

export const TestInput = Schema.Union(Ping, Increment, Start, CompleteWith, FailWith, Stop, ForceReject)
export type TestInput = typeof TestInput.Type

export class Pinged extends Schema.TaggedClass<Pinged>("TestWorkflow/Pinged")("Pinged", {}) {}

export class Incremented extends Schema.TaggedClass<Incremented>("TestWorkflow/Incremented")("Incremented", {
  value: Schema.Number
}) {}

export class Started extends Schema.TaggedClass<Started>("TestWorkflow/Started")("Started", {
  mode: EffectMode
}) {}

export class Completed extends Schema.TaggedClass<Completed>("TestWorkflow/Completed")("Completed", {
  result: Schema.String
}) {}

export class Failed extends Schema.TaggedClass<Failed>("TestWorkflow/Failed")("Failed", {
  error: Schema.String
}) {}

export class Stopped extends Schema.TaggedClass<Stopped>("TestWorkflow/Stopped")("Stopped", {}) {}

export class EffectEnqueued extends Schema.TaggedClass<EffectEnqueued>("TestWorkflow/EffectEnqueued")(
  "EffectEnqueued",
  {}
) {}

export const TestEvent = Schema.Union(Pinged, Incremented, Started, Completed, Failed, Stopped, EffectEnqueued)
export type TestEvent = typeof TestEvent.Type

export class Process extends Schema.TaggedClass<Process>("TestWorkflow/Process")("Process", {
  mode: EffectMode
}) {}

export class Notify extends Schema.TaggedClass<Notify>("TestWorkflow/Notify")("Notify", {
  message: Schema.String
}) {}

export const TestEffect = Schema.Union(Process, Notify)
export type TestEffect = typeof TestEffect.Type

export const TestStatus = Schema.Literal("idle", "processing", "completed", "failed", "stopped")
export type TestStatus = typeof TestStatus.Type

export const TestState = Schema.Struct({
  status: TestStatus,
  /** The result of the last `Completed` event. */
  value: Schema.NullOr(Schema.String),
  counter: Schema.Number
})
export type TestState = typeof TestState.Type

export const initialTestState: TestState = { status: "idle", value: null, counter: 0 }

export type TestWorkflow = Workflow.Workflow<TestState, TestInput, TestEvent, TestEffect, string>

export const evolveTestState = (state: TestState, event: TestEvent): TestState => {
  switch (event._tag) {
    case "Incremented":
      return { ...state, counter: event.value }
    case "Started":
      return { ...state, status: "processing" }
    case "Completed":
      return { ...state, status: "completed", value: event.result }
    case "Failed":
      return { ...state, status: "failed" }
    case "Stopped":
      return { ...state, status: "stopped" }
    case "Pinged":
    case "EffectEnqueued":
      return state
  }
}

/** ironflow's `TestWorkflow` under the given type name. */
export const makeTestWorkflow = (type: string): TestWorkflow =>
  Workflow.make({
    type,
    state: TestState,
    input: TestInput,
    event: TestEvent,
    effect: TestEffect,
    rejection: Schema.String,
    initialState: initialTestState,
    workflowId: { field: "id" },
    evolve: evolveTestState,
    decide: (_now, state, input): Decision.Decision<TestEvent, TestEffect, TestInput, string> => {
      switch (input._tag) {
        case "Ping":
          return Decision.accept(new Pinged())
        case "Increment": {
          const value = state.counter + 1
          const decision = Decision.accept<TestEvent>(new Incremented({ value }))
          return input.withEffect
            ? Decision.withEffect(decision, new Notify({ message: `Counter is now ${value}` }))
            : decision
        }
        case "Start":
          return Decision.withEffect(
            Decision.accept(new Started({ mode: input.mode })),
            new Process({ mode: input.mode })
          )
        case "Completed":
          return Decision.accept(new Completed({ result: input.result }))
        case "Failed":
          return Decision.accept(new Failed({ error: input.error }))
        case "Stop":
          return Decision.accept(new Stopped())
        case "ForceReject":
          return Decision.reject(input.reason)
      }
    },
    isTerminal: (state) => state.status === "stopped"
  })

/** A failure of a fixture handler. */
export class HandlerFailure extends Data.TaggedError("HandlerFailure")<{ readonly message: string }> {}

/**
 * The handler of `TestWorkflow`: `RouteResult` routes `Completed{"success"}`
 * back to the same instance, `TransientFailure` fails on attempt 1 and routes
 * `Completed{"success on attempt n"}` afterwards, `PermanentFailure` always
 * fails; `FireAndForget` and `Notify` route nothing.
 */
export const makeTestHandler = (workflow: TestWorkflow) =>
  workflow.handler((effect, ctx) => {
    const id = ctx.workflow.workflowId
    if (effect._tag === "Notify") return Effect.succeedNone
    switch (effect.mode) {
      case "FireAndForget":
        return Effect.succeedNone
      case "RouteResult":
        return Effect.succeedSome<TestInput>(new CompleteWith({ id, result: "success" }))
      case "TransientFailure":
        return ctx.attempt === 1
          ? Effect.fail(new HandlerFailure({ message: "transient failure on attempt 1" }))
          : Effect.succeedSome<TestInput>(new CompleteWith({ id, result: `success on attempt ${ctx.attempt}` }))
      case "PermanentFailure":
        return Effect.fail(new HandlerFailure({ message: "permanent failure" }))
    }
  })

// =============================================================================
// EffectlessWorkflow
// =============================================================================

export class EffectlessIncrement extends Schema.TaggedClass<EffectlessIncrement>("Effectless/Increment")("Increment", {
  id: Schema.String
}) {}

export class EffectlessIncremented
  extends Schema.TaggedClass<EffectlessIncremented>("Effectless/Incremented")("Incremented", {
    value: Schema.Number
  })
{}

export const EffectlessState = Schema.Struct({ value: Schema.Number })
export type EffectlessState = typeof EffectlessState.Type

export type EffectlessWorkflow = Workflow.Workflow<EffectlessState, EffectlessIncrement, EffectlessIncremented>

/** ironflow's `EffectlessWorkflow`: no effect Schema, cannot reject. */
export const makeEffectlessWorkflow = (type: string): EffectlessWorkflow =>
  Workflow.make({
    type,
    state: EffectlessState,
    input: EffectlessIncrement,
    event: EffectlessIncremented,
    initialState: { value: 0 },
    workflowId: { field: "id" },
    evolve: (_state, event) => ({ value: event.value }),
    decide: (_now, state) => Decision.accept(new EffectlessIncremented({ value: state.value + 1 }))
  })

// =============================================================================
// TimerTestWorkflow
// =============================================================================

/** Starts the instance: `Started`, a `Process` effect and a `Timeout` timer after `timeoutSecs`, keyed by `timerKey`. */
export class TimerStart extends Schema.TaggedClass<TimerStart>("TimerTest/Start")("Start", {
  id: Schema.String,
  timeoutSecs: Schema.Number,
  timerKey: Schema.optional(Schema.String)
}) {}

/** Completes the instance, cancelling the timer `cancelTimerKey` (with a `TimerCancelled` event). */
export class TimerComplete extends Schema.TaggedClass<TimerComplete>("TimerTest/Complete")("Complete", {
  id: Schema.String,
  cancelTimerKey: Schema.optional(Schema.String)
}) {}

/** Delivered by the timer. */
export class Timeout extends Schema.TaggedClass<Timeout>("TimerTest/Timeout")("Timeout", {
  id: Schema.String
}) {}

export const TimerInput = Schema.Union(TimerStart, TimerComplete, Timeout)
export type TimerInput = typeof TimerInput.Type

export class TimerStarted extends Schema.TaggedClass<TimerStarted>("TimerTest/Started")("Started", {}) {}
export class TimerCompleted extends Schema.TaggedClass<TimerCompleted>("TimerTest/Completed")("Completed", {}) {}
export class TimedOut extends Schema.TaggedClass<TimedOut>("TimerTest/TimedOut")("TimedOut", {}) {}
export class TimerCancelled extends Schema.TaggedClass<TimerCancelled>("TimerTest/TimerCancelled")("TimerCancelled", {
  key: Schema.String
}) {}

export const TimerEvent = Schema.Union(TimerStarted, TimerCompleted, TimedOut, TimerCancelled)
export type TimerEvent = typeof TimerEvent.Type

export class TimerProcess extends Schema.TaggedClass<TimerProcess>("TimerTest/Process")("Process", {}) {}

export const TimerState = Schema.Struct({
  started: Schema.Boolean,
  completed: Schema.Boolean,
  timedOut: Schema.Boolean
})
export type TimerState = typeof TimerState.Type

export type TimerTestWorkflow = Workflow.Workflow<TimerState, TimerInput, TimerEvent, TimerProcess>

/** ironflow's `TimerTestWorkflow` under the given type name. */
export const makeTimerTestWorkflow = (type: string): TimerTestWorkflow =>
  Workflow.make({
    type,
    state: TimerState,
    input: TimerInput,
    event: TimerEvent,
    effect: TimerProcess,
    initialState: { started: false, completed: false, timedOut: false },
    workflowId: { field: "id" },
    evolve: (state, event) => {
      switch (event._tag) {
        case "Started":
          return { ...state, started: true }
        case "Completed":
          return { ...state, completed: true }
        case "TimedOut":
          return { ...state, timedOut: true }
        case "TimerCancelled":
          return state
      }
    },
    decide: (_now, _state, input): Decision.Decision<TimerEvent, TimerProcess, TimerInput> => {
      switch (input._tag) {
        case "Start": {
          const timer = Timer.after(`${input.timeoutSecs} seconds`, new Timeout({ id: input.id }) as TimerInput)
          return Decision.withTimer(
            Decision.withEffect(Decision.accept(new TimerStarted()), new TimerProcess()),
            input.timerKey === undefined ? timer : Timer.withKey(timer, input.timerKey)
          )
        }
        case "Complete":
          return input.cancelTimerKey === undefined
            ? Decision.accept(new TimerCompleted())
            : Decision.cancelTimer(
              Decision.acceptEvents([
                new TimerCompleted(),
                new TimerCancelled({ key: input.cancelTimerKey })
              ]),
              input.cancelTimerKey
            )
        case "Timeout":
          return Decision.accept(new TimedOut())
      }
    }
  })

/** Answers every effect with `Complete{cancelTimerKey: "timeout"}` for the same instance. */
export const makeTimerTestHandler = (workflow: TimerTestWorkflow) =>
  workflow.handler((_effect, ctx) =>
    Effect.succeed(
      Option.some<TimerInput>(new TimerComplete({ id: ctx.workflow.workflowId, cancelTimerKey: "timeout" }))
    )
  )

// =============================================================================
// UniqueKeyWorkflow
// =============================================================================

/** Opens the instance holding `key`: at most one open instance per key. */
export class Open extends Schema.TaggedClass<Open>("UniqueKey/Open")("Open", {
  id: Schema.String,
  key: Schema.String
}) {}

/** Closes the instance (terminal), releasing its key. */
export class Close extends Schema.TaggedClass<Close>("UniqueKey/Close")("Close", {
  id: Schema.String
}) {}

export const UniqueKeyInput = Schema.Union(Open, Close)
export type UniqueKeyInput = typeof UniqueKeyInput.Type

export class Opened extends Schema.TaggedClass<Opened>("UniqueKey/Opened")("Opened", { key: Schema.String }) {}
export class Closed extends Schema.TaggedClass<Closed>("UniqueKey/Closed")("Closed", {}) {}

export const UniqueKeyEvent = Schema.Union(Opened, Closed)
export type UniqueKeyEvent = typeof UniqueKeyEvent.Type

export const UniqueKeyState = Schema.Struct({ key: Schema.NullOr(Schema.String), closed: Schema.Boolean })
export type UniqueKeyState = typeof UniqueKeyState.Type

export type UniqueKeyWorkflow = Workflow.Workflow<UniqueKeyState, UniqueKeyInput, UniqueKeyEvent>

/** A singleton-per-key workflow: `uniqueKey(Open) = key`, terminal once closed. */
export const makeUniqueKeyWorkflow = (type: string): UniqueKeyWorkflow =>
  Workflow.make({
    type,
    state: UniqueKeyState,
    input: UniqueKeyInput,
    event: UniqueKeyEvent,
    initialState: { key: null, closed: false },
    workflowId: { field: "id" },
    evolve: (state, event) => event._tag === "Opened" ? { ...state, key: event.key } : { ...state, closed: true },
    decide: (_now, _state, input) =>
      input._tag === "Open"
        ? Decision.accept<UniqueKeyEvent>(new Opened({ key: input.key }))
        : Decision.accept(new Closed()),
    isTerminal: (state) => state.closed,
    uniqueKey: (input) => input._tag === "Open" ? input.key : undefined
  })
