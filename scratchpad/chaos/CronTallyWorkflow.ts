/**
 * The workflow of the schedules scenario: one input per schedule tick, built
 * from the tick's time; it accepts every input, duplicates included, so only
 * the runtime can keep a tick from being applied twice. One `Beaten` event per
 * applied tick, on one instance.
 */
import { Schema } from "effect"
import * as Decision from "ironflow/Decision"
import * as Workflow from "ironflow/Workflow"
import * as WorkflowSchedule from "ironflow/WorkflowSchedule"

export const cronTallyType = "cron_tally"
export const cronTallyId = "beats"

export class Beat extends Schema.TaggedClass<Beat>()("Beat", { id: Schema.String, at: Schema.String }) {}
export class Beaten extends Schema.TaggedClass<Beaten>()("Beaten", { at: Schema.String }) {}

export const CronTallyWorkflow = Workflow.make({
  type: cronTallyType,
  state: Schema.Struct({ beats: Schema.Number }),
  input: Beat,
  event: Beaten,
  initialState: { beats: 0 },
  workflowId: { field: "id" },
  evolve: (state) => ({ beats: state.beats + 1 }),
  // Never terminal, never rejecting: a duplicate would be a second Beaten event of the same tick.
  decide: (_now, _state, input) => Decision.accept(new Beaten({ at: input.at })),
  isTerminal: () => false
})

/** Every `everyMs`, every missed tick caught up (up to 1000 of them). */
export const cronTallySchedule = (name: string, everyMs: number) =>
  WorkflowSchedule.interval({
    name,
    workflow: CronTallyWorkflow,
    every: `${everyMs} millis`,
    input: (tick) => new Beat({ id: cronTallyId, at: tick.toISOString() }),
    catchUp: { all: 1000 }
  })
