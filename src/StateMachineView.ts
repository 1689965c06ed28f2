/**
 * State-machine views of workflows (ironflow's `visualization` module):
 * describe a workflow's states and transitions for humans, and render them
 * as Mermaid or Graphviz DOT. Hints only: `decide` stays the truth.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Workflow from "./Workflow.js"

/**
 * A field value shown for a state: text, a number or a boolean.
 *
 * @since 0.1.0
 * @category models
 */
export type FieldValue = Data.TaggedEnum<{
  String: { readonly value: string }
  Number: { readonly value: number }
  Bool: { readonly value: boolean }
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const FieldValue = Data.taggedEnum<FieldValue>()

/**
 * The display form of a field value (the inner value).
 *
 * @since 0.1.0
 * @category conversions
 */
export const displayFieldValue = (value: FieldValue): string => String(value.value)

/**
 * What one state looks like: its status name, some fields, and whether it is terminal.
 *
 * @since 0.1.0
 * @category models
 */
export class StateInfo extends Data.Class<{
  readonly status: string
  readonly fields: ReadonlyMap<string, FieldValue>
  readonly isTerminal: boolean
}> {
  /** @since 0.1.0 */
  static make(status: string): StateInfo {
    return new StateInfo({ status, fields: new Map(), isTerminal: false })
  }
  /**
   * A field shown as text (its `String(...)`).
   *
   * @since 0.1.0
   */
  withField(name: string, value: { toString(): string }): StateInfo {
    return this.set(name, FieldValue.String({ value: String(value) }))
  }
  /** @since 0.1.0 */
  withNumericField(name: string, value: number): StateInfo {
    return this.set(name, FieldValue.Number({ value }))
  }
  /** @since 0.1.0 */
  withBoolField(name: string, value: boolean): StateInfo {
    return this.set(name, FieldValue.Bool({ value }))
  }
  /** @since 0.1.0 */
  terminal(isTerminal: boolean): StateInfo {
    return new StateInfo({ ...this, isTerminal })
  }
  /** @internal */
  private set(name: string, value: FieldValue): StateInfo {
    const fields = new Map(this.fields)
    fields.set(name, value)
    return new StateInfo({ ...this, fields })
  }
}

/**
 * A transition available from a state: the input that triggers it, the
 * status it leads to, and the effects and timers it produces.
 *
 * @since 0.1.0
 * @category models
 */
export class TransitionInfo extends Data.Class<{
  readonly input: string
  readonly targetStatus: string
  readonly effects: ReadonlyArray<string>
  readonly timers: ReadonlyArray<string>
  readonly description: string | undefined
}> {
  /** @since 0.1.0 */
  static make(input: string, targetStatus: string): TransitionInfo {
    return new TransitionInfo({ input, targetStatus, effects: [], timers: [], description: undefined })
  }
  /** @since 0.1.0 */
  withEffect(effect: string): TransitionInfo {
    return new TransitionInfo({ ...this, effects: [...this.effects, effect] })
  }
  /** @since 0.1.0 */
  withTimer(timer: string): TransitionInfo {
    return new TransitionInfo({ ...this, timers: [...this.timers, timer] })
  }
  /** @since 0.1.0 */
  withDescription(description: string): TransitionInfo {
    return new TransitionInfo({ ...this, description })
  }
}

/**
 * A state of a state machine definition.
 *
 * @since 0.1.0
 * @category models
 */
export class StateDefinition extends Data.Class<{
  readonly name: string
  readonly isTerminal: boolean
  readonly description: string | undefined
}> {
  /** @since 0.1.0 */
  static make(name: string): StateDefinition {
    return new StateDefinition({ name, isTerminal: false, description: undefined })
  }
  /** @since 0.1.0 */
  terminal(): StateDefinition {
    return new StateDefinition({ ...this, isTerminal: true })
  }
  /** @since 0.1.0 */
  withDescription(description: string): StateDefinition {
    return new StateDefinition({ ...this, description })
  }
}

/**
 * An edge of a state machine definition.
 *
 * @since 0.1.0
 * @category models
 */
export class TransitionDefinition extends Data.Class<{
  readonly from: string
  readonly to: string
  readonly input: string
  readonly effects: ReadonlyArray<string>
  readonly timers: ReadonlyArray<string>
}> {
  /** @since 0.1.0 */
  static make(from: string, to: string, input: string): TransitionDefinition {
    return new TransitionDefinition({ from, to, input, effects: [], timers: [] })
  }
  /** @since 0.1.0 */
  withEffect(effect: string): TransitionDefinition {
    return new TransitionDefinition({ ...this, effects: [...this.effects, effect] })
  }
  /** @since 0.1.0 */
  withTimer(timer: string): TransitionDefinition {
    return new TransitionDefinition({ ...this, timers: [...this.timers, timer] })
  }
}

/**
 * A whole state machine: states, transitions and the initial state, with the
 * exact Mermaid and DOT renderings of ironflow 0.6.0.
 *
 * @since 0.1.0
 * @category models
 */
export class StateMachineDefinition extends Data.Class<{
  readonly states: ReadonlyArray<StateDefinition>
  readonly transitions: ReadonlyArray<TransitionDefinition>
  readonly initialState: string
}> {
  /** @since 0.1.0 */
  static make(initialState: string): StateMachineDefinition {
    return new StateMachineDefinition({ states: [], transitions: [], initialState })
  }
  /** @since 0.1.0 */
  withState(state: StateDefinition): StateMachineDefinition {
    return new StateMachineDefinition({ ...this, states: [...this.states, state] })
  }
  /** @since 0.1.0 */
  withTransition(transition: TransitionDefinition): StateMachineDefinition {
    return new StateMachineDefinition({ ...this, transitions: [...this.transitions, transition] })
  }

  /**
   * `stateDiagram-v2`, the initial arrow, one line per transition
   * (`from --> to : label`, the label being the input, then `[effects]`, then
   * `⏱timers`, joined by a space), then `name --> [*]` per terminal state.
   * Lines joined by `\n`, no trailing newline.
   *
   * @since 0.1.0
   */
  toMermaid(): string {
    const lines = ["stateDiagram-v2", `    [*] --> ${this.initialState}`]
    for (const t of this.transitions) {
      const parts = [t.input]
      if (t.effects.length > 0) parts.push(`[${t.effects.join(", ")}]`)
      if (t.timers.length > 0) parts.push(`⏱${t.timers.join(", ")}`)
      lines.push(`    ${t.from} --> ${t.to} : ${parts.join(" ")}`)
    }
    for (const s of this.states) {
      if (s.isTerminal) lines.push(`    ${s.name} --> [*]`)
    }
    return lines.join("\n")
  }

  /**
   * Graphviz: `digraph workflow {`, `rankdir=LR;`, `node [shape=box];`, a blank
   * line, one edge per transition (label parts joined by the two characters
   * `\n`, the timer part prefixed `timer:`), a blank line, a double circle per
   * terminal state, `}`. Labels are not escaped.
   *
   * @since 0.1.0
   */
  toDot(): string {
    const lines = ["digraph workflow {", "    rankdir=LR;", "    node [shape=box];", ""]
    for (const t of this.transitions) {
      const parts = [t.input]
      if (t.effects.length > 0) parts.push(`[${t.effects.join(", ")}]`)
      if (t.timers.length > 0) parts.push(`timer:${t.timers.join(", ")}`)
      lines.push(`    ${t.from} -> ${t.to} [label="${parts.join("\\n")}"];`)
    }
    lines.push("")
    for (const s of this.states) {
      if (s.isTerminal) lines.push(`    ${s.name} [shape=doublecircle];`)
    }
    lines.push("}")
    return lines.join("\n")
  }
}

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("ironflow/StateMachineView")

/**
 * ironflow's `StateMachineView` for a workflow: what a state looks like, the
 * transitions available from it, and optionally the whole state machine.
 *
 * @since 0.1.0
 * @category models
 */
export interface StateMachineView<W extends Workflow.Any> {
  readonly [TypeId]: typeof TypeId
  readonly workflow: W
  readonly stateInfo: (state: Workflow.State<W>) => StateInfo
  readonly transitions: (state: Workflow.State<W>) => ReadonlyArray<TransitionInfo>
  readonly stateMachine: () => StateMachineDefinition | undefined
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = <W extends Workflow.Any>(
  workflow: W,
  options: {
    readonly stateInfo: (state: Workflow.State<W>) => StateInfo
    readonly transitions?: ((state: Workflow.State<W>) => ReadonlyArray<TransitionInfo>) | undefined
    readonly stateMachine?: (() => StateMachineDefinition | undefined) | undefined
  }
): StateMachineView<W> => ({
  [TypeId]: TypeId,
  workflow,
  stateInfo: options.stateInfo,
  transitions: options.transitions ?? (() => []),
  stateMachine: options.stateMachine ?? (() => undefined)
})

/**
 * @since 0.1.0
 * @category guards
 */
export const isStateMachineView = (u: unknown): u is StateMachineView<Workflow.Any> =>
  typeof u === "object" && u !== null && TypeId in u
