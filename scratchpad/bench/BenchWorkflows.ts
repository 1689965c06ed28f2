/**
 * The workflows the benchmark runs. Each child defines its own handler (a
 * no-op that counts, or one that records a time); the workflows are pure.
 */
import { Schema } from "effect"
import { Decision, Workflow } from "ironflow"

// Scenario 1 (effect throughput) and scenario 2 (round trips), and the soak:
// Start → Started + effect Work; the handler returns Finish (or nothing) → Finished, terminal.
export class Start extends Schema.TaggedClass<Start>()("Start", { id: Schema.String }) {}
export class Finish extends Schema.TaggedClass<Finish>()("Finish", { id: Schema.String }) {}
export class Started extends Schema.TaggedClass<Started>()("Started", {}) {}
export class Finished extends Schema.TaggedClass<Finished>()("Finished", {}) {}
export class Work extends Schema.TaggedClass<Work>()("Work", { id: Schema.String }) {}

const roundTrip = (type: string, onFinish: () => void = () => {}) =>
  Workflow.make({
    type,
    state: Schema.Struct({ finished: Schema.Boolean }),
    input: Schema.Union(Start, Finish),
    event: Schema.Union(Started, Finished),
    effect: Work,
    initialState: { finished: false },
    workflowId: { field: "id" },
    evolve: (state, event) => (event._tag === "Finished" ? { finished: true } : state),
    decide: (_now, _state, input) => {
      switch (input._tag) {
        case "Start":
          return Decision.accept(new Started()).pipe(Decision.withEffect(new Work({ id: input.id })))
        case "Finish":
          onFinish()
          return Decision.accept(new Finished())
      }
    },
    isTerminal: (state) => state.finished
  })

/** The workflow whose effects scenario 1 queues directly in the outbox. */
export const EffectsWorkflow = roundTrip("bench_effects")

/** The stored form of an `EffectsWorkflow` effect, for SQL inserts: `{"type": "Work", "id": ...}`. */
export const workPayloadSql = "json_build_object('type', 'Work', 'id', 'w-' || g)::jsonb"

/** Round trips; `onFinish` runs in the decision of each Finish input (a bench-only side effect). */
export const makeRoundTrip = (onFinish: () => void) => roundTrip("bench_roundtrip", onFinish)

// Scenario 5 (history length): every Append adds one event.
export class Append extends Schema.TaggedClass<Append>()("Append", { id: Schema.String }) {}
export class Appended extends Schema.TaggedClass<Appended>()("Appended", {}) {}

export const HistoryWorkflow = Workflow.make({
  type: "bench_history",
  state: Schema.Struct({ count: Schema.Number }),
  input: Append,
  event: Appended,
  initialState: { count: 0 },
  workflowId: { field: "id" },
  evolve: (state) => ({ count: state.count + 1 }),
  decide: () => Decision.accept(new Appended())
})

// Scenario 4 (timer lateness): Schedule carries the intended due time (epoch ms); its decision
// schedules Fire for exactly that time, and the decision of Fire reports `now - due`.
export class ScheduleFire extends Schema.TaggedClass<ScheduleFire>()("ScheduleFire", {
  id: Schema.String,
  dueAt: Schema.Number
}) {}
export class Fire extends Schema.TaggedClass<Fire>()("Fire", { id: Schema.String, dueAt: Schema.Number }) {}
export class FireScheduled extends Schema.TaggedClass<FireScheduled>()("FireScheduled", {}) {}
export class Fired extends Schema.TaggedClass<Fired>()("Fired", { latenessMs: Schema.Number }) {}

export const makeTimerWorkflow = (onFire: (latenessMs: number) => void) =>
  Workflow.make({
    type: "bench_timer",
    state: Schema.Struct({ fired: Schema.Boolean }),
    input: Schema.Union(ScheduleFire, Fire),
    event: Schema.Union(FireScheduled, Fired),
    initialState: { fired: false },
    workflowId: { field: "id" },
    evolve: (state, event) => (event._tag === "Fired" ? { fired: true } : state),
    decide: (now, _state, input) => {
      switch (input._tag) {
        case "ScheduleFire": {
          const delay = Math.max(0, input.dueAt - now.epochMillis)
          return Decision.accept(new FireScheduled()).pipe(
            Decision.withTimerAfter(delay, new Fire({ id: input.id, dueAt: now.epochMillis + delay }))
          )
        }
        case "Fire": {
          const latenessMs = now.epochMillis - input.dueAt
          onFire(latenessMs)
          return Decision.accept(new Fired({ latenessMs }))
        }
      }
    },
    isTerminal: (state) => state.fired
  })

// Scenario 3 (pickup latency): Start → Started + effect Work; the handler records when it starts.
export const PickupWorkflow = roundTrip("bench_pickup")
