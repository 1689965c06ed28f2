/**
 * The workflow of the limits scenario: its effects' handler declares a
 * concurrency limit per key and records each run's start and end (database
 * time) with its process id in `chaos_limited_runs`, so the driver can count
 * how many ran at once per key, across processes and SIGKILLs.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Option, Schema } from "effect"
import * as Decision from "ironflow/Decision"
import * as Workflow from "ironflow/Workflow"

export const limitedType = "chaos_limited"
export const runsTable = "chaos_limited_runs"
export const limitPerKey = 2

export class Call extends Schema.TaggedClass<Call>()("Call", { id: Schema.String, key: Schema.String }) {}
export class Start extends Schema.TaggedClass<Start>()("Start", { id: Schema.String, key: Schema.String }) {}
class Started extends Schema.TaggedClass<Started>()("Started", {}) {}

export const LimitedWorkflow = Workflow.make({
  type: limitedType,
  state: Schema.Struct({}),
  input: Start,
  event: Started,
  effect: Call,
  initialState: {},
  workflowId: { field: "id" },
  evolve: (state) => state,
  decide: (_now, _state, input) =>
    Decision.accept(new Started()).pipe(Decision.withEffect(new Call({ id: input.id, key: input.key })))
})

export const limitedSchemaSql = `
  CREATE TABLE ${runsTable} (
    run_id bigserial PRIMARY KEY,
    effect_id uuid NOT NULL,
    key text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at timestamptz
  )`

/** Runs for 20 to 80 ms; the end is written before the handler returns (so before its slot is free). */
export const LimitedHandler = LimitedWorkflow.handler(
  (effect, ctx) =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [row] = yield* sql<{ run_id: string }>`
        INSERT INTO ${sql(runsTable)} (effect_id, key, pid, started_at)
        VALUES (${ctx.effectId}, ${effect.key}, ${process.pid}, clock_timestamp()) RETURNING run_id`
      yield* Effect.sleep(20 + Math.floor(Math.random() * 60))
      yield* sql`UPDATE ${sql(runsTable)} SET ended_at = clock_timestamp() WHERE run_id = ${row.run_id}`
      return Option.none()
    }).pipe(Effect.orDie),
  { concurrency: { key: (effect) => effect.key, limit: limitPerKey } }
)
