/**
 * The console suites' workflow: `Start{id, note}` records `Started{note}` and
 * a `Deliver` effect; the handler fails (with an error text full of markup)
 * while `deliveries.healthy` is false, else routes `Finish`, which completes
 * the instance; `Touch` only records `Touched`. A state machine view draws new → started → delivered.
 */
import { Effect, Option, Schema } from "effect"
import { Decision, StateMachineView, Workflow } from "ironflow"

export class Start extends Schema.TaggedClass<Start>("ConsoleTest/Start")("Start", {
  id: Schema.String,
  note: Schema.String
}) {}
export class Finish extends Schema.TaggedClass<Finish>("ConsoleTest/Finish")("Finish", { id: Schema.String }) {}
export class Touch extends Schema.TaggedClass<Touch>("ConsoleTest/Touch")("Touch", { id: Schema.String }) {}
export class Touched extends Schema.TaggedClass<Touched>("ConsoleTest/Touched")("Touched", {}) {}
export class Started extends Schema.TaggedClass<Started>("ConsoleTest/Started")("Started", { note: Schema.String }) {}
export class Finished extends Schema.TaggedClass<Finished>("ConsoleTest/Finished")("Finished", {}) {}
export class Deliver extends Schema.TaggedClass<Deliver>("ConsoleTest/Deliver")("Deliver", {
  id: Schema.String,
  note: Schema.String
}) {}

const State = Schema.Struct({ status: Schema.Literal("new", "started", "delivered"), note: Schema.String })

export const markupError = `<script>alert("error")</script> & "quotes"`

export const makeConsoleWorkflow = (type: string) => {
  const workflow = Workflow.make({
    type,
    state: State,
    input: Schema.Union(Start, Finish, Touch),
    event: Schema.Union(Started, Finished, Touched),
    effect: Deliver,
    rejection: Schema.String,
    initialState: { status: "new", note: "" } as typeof State.Type,
    workflowId: { field: "id" },
    isTerminal: (state) => state.status === "delivered",
    evolve: (state, event): typeof State.Type =>
      event._tag === "Started"
        ? { status: "started", note: event.note }
        : event._tag === "Touched"
        ? state
        : { ...state, status: "delivered" },
    decide: (_now, state, input) =>
      input._tag === "Touch"
        ? Decision.accept(new Touched())
        : input._tag === "Start"
        ? state.status === "new"
          ? Decision.accept(new Started({ note: input.note })).pipe(
            Decision.withEffect(new Deliver({ id: input.id, note: input.note }))
          )
          : Decision.reject("already started")
        : state.status === "started"
        ? Decision.accept(new Finished())
        : Decision.reject("not started")
  })
  const deliveries = { healthy: false, calls: 0 }
  const handler = workflow.handler((effect) =>
    Effect.suspend(() => {
      deliveries.calls++
      return deliveries.healthy
        ? Effect.succeed(Option.some(new Finish({ id: effect.id })))
        : Effect.fail(new Error(markupError))
    })
  )
  const view = StateMachineView.make(workflow, {
    stateInfo: (state) => StateMachineView.StateInfo.make(state.status).terminal(state.status === "delivered"),
    stateMachine: () =>
      StateMachineView.StateMachineDefinition.make("new")
        .withState(StateMachineView.StateDefinition.make("new"))
        .withState(StateMachineView.StateDefinition.make("started"))
        .withState(StateMachineView.StateDefinition.make("delivered").terminal())
        .withTransition(StateMachineView.TransitionDefinition.make("new", "started", "Start").withEffect("Deliver"))
        .withTransition(StateMachineView.TransitionDefinition.make("started", "delivered", "Finish"))
  })
  return { workflow, handler, view, deliveries }
}
