/**
 * The workflow of the exactly-once scenario: it accepts every input, duplicates
 * included, so nothing in `decide` hides a result applied twice. A `Start`
 * enqueues `effects` bumps and a keyed tick timer; each bump's handler returns
 * `Bumped`, recorded as a `BumpApplied` event; the tick as `Ticked`. A run is
 * exactly once when every instance has one `BumpApplied` per bump and one
 * `Ticked`, however often the handlers ran.
 */
import { SqlClient } from "@effect/sql"
import { Duration, Effect, Option, Schema } from "effect"
import * as Decision from "ironflow/Decision"
import * as Workflow from "ironflow/Workflow"

export const tallyType = "tally"

export class Start extends Schema.TaggedClass<Start>()("Start", { id: Schema.String, effects: Schema.Number }) {}
export class Bumped extends Schema.TaggedClass<Bumped>()("Bumped", { id: Schema.String, k: Schema.Number }) {}
export class Tick extends Schema.TaggedClass<Tick>()("Tick", { id: Schema.String }) {}
const Input = Schema.Union(Start, Bumped, Tick)
type Input = typeof Input.Type

export class Started extends Schema.TaggedClass<Started>()("Started", { effects: Schema.Number }) {}
export class BumpApplied extends Schema.TaggedClass<BumpApplied>()("BumpApplied", { k: Schema.Number }) {}
export class Ticked extends Schema.TaggedClass<Ticked>()("Ticked", {}) {}
const Event = Schema.Union(Started, BumpApplied, Ticked)
type Event = typeof Event.Type

export class Bump extends Schema.TaggedClass<Bump>()("Bump", { id: Schema.String, k: Schema.Number }) {}

export const TallyWorkflow = Workflow.make({
  type: tallyType,
  state: Schema.Struct({ bumps: Schema.Number }),
  input: Input,
  event: Event,
  effect: Bump,
  initialState: { bumps: 0 },
  workflowId: { field: "id" },
  evolve: (state, event) => event._tag === "BumpApplied" ? { bumps: state.bumps + 1 } : state,
  // Never terminal: a completed instance would answer AlreadyCompleted and hide a duplicate.
  decide: (_now, _state, input) => {
    switch (input._tag) {
      case "Start":
        return Decision.withTimerAfter(
          Decision.withEffects(
            Decision.accept<Event>(new Started({ effects: input.effects })),
            Array.from({ length: input.effects }, (_, k) => new Bump({ id: input.id, k }))
          ),
          Duration.millis(300),
          new Tick({ id: input.id }),
          { key: "tick" }
        )
      case "Bumped":
        return Decision.accept<Event>(new BumpApplied({ k: input.k }))
      case "Tick":
        return Decision.accept<Event>(new Ticked())
    }
  }
})

export const tallySchemaSql = `
  CREATE SCHEMA IF NOT EXISTS tally;
  CREATE TABLE IF NOT EXISTS tally.invocations (effect_id uuid NOT NULL, pid integer NOT NULL);
`

/** Records each run (to show handlers ran more than once), waits a little, returns the bump's result. */
export const TallyHandler = TallyWorkflow.handler((bump, ctx) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`INSERT INTO tally.invocations (effect_id, pid) VALUES (${ctx.effectId}, ${process.pid})`
    yield* Effect.sleep(Duration.millis(Math.floor(Math.random() * 5)))
    return Option.some<Input>(new Bumped({ id: bump.id, k: bump.k }))
  })
)
