import { assert, describe, it } from "@effect/vitest"
import { StateMachineView } from "ironflow"
import { OrderStateMachine, OrderWorkflow } from "../scratchpad/order-app/OrderWorkflow.js"

const { StateDefinition, StateInfo, StateMachineDefinition, TransitionDefinition, TransitionInfo } = StateMachineView

const payment = StateMachineDefinition.make("created")
  .withState(StateDefinition.make("created"))
  .withState(StateDefinition.make("paid").withDescription("money received"))
  .withState(StateDefinition.make("completed").terminal())
  .withTransition(TransitionDefinition.make("created", "paid", "Pay").withEffect("Charge").withEffect("Notify"))
  .withTransition(TransitionDefinition.make("paid", "completed", "Ship").withTimer("Deliver").withTimer("Remind"))

describe("StateMachineView", () => {
  it("StateInfo builders", () => {
    const info = StateInfo.make("paid").withField("id", "ord-1").withNumericField("amount", 12.5).withBoolField(
      "vip",
      true
    )
      .terminal(true)
    assert.strictEqual(info.status, "paid")
    assert.isTrue(info.isTerminal)
    assert.deepStrictEqual(
      Array.from(info.fields, ([k, v]) => [k, v._tag, StateMachineView.displayFieldValue(v)]),
      [["id", "String", "ord-1"], ["amount", "Number", "12.5"], ["vip", "Bool", "true"]]
    )
  })

  it("TransitionInfo builders", () => {
    const t = TransitionInfo.make("Pay", "paid").withEffect("Charge").withTimer("Timeout").withDescription("pays")
    assert.deepStrictEqual([t.input, t.targetStatus, t.effects, t.timers, t.description], [
      "Pay",
      "paid",
      ["Charge"],
      ["Timeout"],
      "pays"
    ])
  })

  it("renders Mermaid exactly", () => {
    assert.strictEqual(
      payment.toMermaid(),
      [
        "stateDiagram-v2",
        "    [*] --> created",
        "    created --> paid : Pay [Charge, Notify]",
        "    paid --> completed : Ship ⏱Deliver, Remind",
        "    completed --> [*]"
      ].join("\n")
    )
  })

  it("renders DOT exactly", () => {
    assert.strictEqual(
      payment.toDot(),
      [
        "digraph workflow {",
        "    rankdir=LR;",
        "    node [shape=box];",
        "",
        "    created -> paid [label=\"Pay\\n[Charge, Notify]\"];",
        "    paid -> completed [label=\"Ship\\ntimer:Deliver, Remind\"];",
        "",
        "    completed [shape=doublecircle];",
        "}"
      ].join("\n")
    )
  })

  it("a label with effects and timers joins its parts with a space in Mermaid", () => {
    const def = StateMachineDefinition.make("a").withTransition(
      TransitionDefinition.make("a", "b", "Go").withEffect("E").withTimer("T")
    )
    assert.include(def.toMermaid(), "    a --> b : Go [E] ⏱T")
    assert.include(def.toDot(), "[label=\"Go\\n[E]\\ntimer:T\"]")
  })

  it("a view describes a workflow's states", () => {
    const info = OrderStateMachine.stateInfo({ ...OrderWorkflow.initialState, status: "shipped", amount: 3 })
    assert.isTrue(info.isTerminal)
    assert.include(OrderStateMachine.stateMachine()!.toMermaid(), "shipping --> shipped : Shipped")
    assert.isTrue(StateMachineView.isStateMachineView(OrderStateMachine))
  })
})
