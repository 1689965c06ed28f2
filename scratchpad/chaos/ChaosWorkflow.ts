/**
 * The workflow of the chaos harness and the handler its worker processes run.
 *
 * Start{id} → Started, effects DoA and DoB. Their handlers return AResult and
 * BResult; once both are in, a keyed timer (`fire`, 1 s) delivers Fire{id} →
 * Finished (terminal). Every instance must end with exactly
 * [Started, AReceived|BReceived, BReceived|AReceived, Finished].
 *
 * A result routed twice (the handler ran again after a crash between routing
 * and its ack) is rejected by `decide`, so at-least-once handler invocations
 * can never double an event: a doubled event in the store is a real loss of
 * the exactly-once-per-input guarantee.
 *
 * Every handler invocation is recorded in `chaos.invocations` by its own
 * statements (outside any workflow transaction), so the driver can count
 * duplicates and see which process ran what.
 */
import { SqlClient } from "@effect/sql"
import { Context, Duration, Effect, Layer, Option, Schema } from "effect"
import * as Decision from "ironflow/Decision"
import * as Workflow from "ironflow/Workflow"

export const workflowType = "chaos"
export const fireDelay = Duration.seconds(1)

export class Start extends Schema.TaggedClass<Start>()("Start", { id: Schema.String, poison: Schema.Boolean }) {}
export class AResult extends Schema.TaggedClass<AResult>()("AResult", { id: Schema.String }) {}
export class BResult extends Schema.TaggedClass<BResult>()("BResult", { id: Schema.String }) {}
export class Fire extends Schema.TaggedClass<Fire>()("Fire", { id: Schema.String }) {}
export const ChaosInput = Schema.Union(Start, AResult, BResult, Fire)
export type ChaosInput = typeof ChaosInput.Type

export class Started extends Schema.TaggedClass<Started>()("Started", { poison: Schema.Boolean }) {}
export class AReceived extends Schema.TaggedClass<AReceived>()("AReceived", {}) {}
export class BReceived extends Schema.TaggedClass<BReceived>()("BReceived", {}) {}
export class Finished extends Schema.TaggedClass<Finished>()("Finished", {}) {}
export const ChaosEvent = Schema.Union(Started, AReceived, BReceived, Finished)
export type ChaosEvent = typeof ChaosEvent.Type

export class DoA extends Schema.TaggedClass<DoA>()("DoA", { id: Schema.String }) {}
export class DoB extends Schema.TaggedClass<DoB>()("DoB", { id: Schema.String, poison: Schema.Boolean }) {}
export const ChaosEffect = Schema.Union(DoA, DoB)
export type ChaosEffect = typeof ChaosEffect.Type

export const ChaosState = Schema.Struct({
  started: Schema.Boolean,
  a: Schema.Boolean,
  b: Schema.Boolean,
  finished: Schema.Boolean
})
export type ChaosState = typeof ChaosState.Type

const fire = (id: string) => Decision.withTimerAfter(fireDelay, new Fire({ id }), { key: "fire" })

export const ChaosWorkflow = Workflow.make({
  type: workflowType,
  state: ChaosState,
  input: ChaosInput,
  event: ChaosEvent,
  effect: ChaosEffect,
  rejection: Schema.String,
  initialState: { started: false, a: false, b: false, finished: false },
  workflowId: { field: "id" },
  evolve: (state, event) => {
    switch (event._tag) {
      case "Started":
        return { ...state, started: true }
      case "AReceived":
        return { ...state, a: true }
      case "BReceived":
        return { ...state, b: true }
      case "Finished":
        return { ...state, finished: true }
    }
  },
  decide: (_now, state, input) => {
    switch (input._tag) {
      case "Start":
        return state.started
          ? Decision.reject("already started")
          : Decision.accept(new Started({ poison: input.poison })).pipe(
            Decision.withEffects([new DoA({ id: input.id }), new DoB({ id: input.id, poison: input.poison })])
          )
      case "AResult":
        if (!state.started) return Decision.reject("not started")
        if (state.a) return Decision.reject("A already received")
        return state.b ? Decision.accept(new AReceived()).pipe(fire(input.id)) : Decision.accept(new AReceived())
      case "BResult":
        if (!state.started) return Decision.reject("not started")
        if (state.b) return Decision.reject("B already received")
        return state.a ? Decision.accept(new BReceived()).pipe(fire(input.id)) : Decision.accept(new BReceived())
      case "Fire":
        return state.a && state.b ? Decision.accept(new Finished()) : Decision.reject("not ready to finish")
    }
  },
  isTerminal: (state) => state.finished
})

/** The expected stored event types of a finished instance (A and B may come in either order). */
export const expectedEventTypes = (types: ReadonlyArray<string>): boolean =>
  types.length === 4 && types[0] === "Started" && types[3] === "Finished" &&
  ((types[1] === "AReceived" && types[2] === "BReceived") || (types[1] === "BReceived" && types[2] === "AReceived"))

/** How the handlers of one worker process behave. */
export class HandlerBehaviour extends Context.Tag("chaos/HandlerBehaviour")<HandlerBehaviour, {
  /** Each handler sleeps a random time in [min, max] milliseconds. */
  readonly delayMs: readonly [number, number]
  /** Name of this process in `chaos.invocations`. */
  readonly worker: string
}>() {
  static layer = (options: HandlerBehaviour["Type"]) => Layer.succeed(HandlerBehaviour, options)
}

/** A poisoned effect while its instance is listed in `chaos.poison`: a failed attempt with a readable reason. */
export class Poisoned extends Schema.TaggedError<Poisoned>()("Poisoned", { id: Schema.String }) {
  override get message() {
    return `effect B of ${this.id} is poisoned (listed in chaos.poison)`
  }
}

/** The schema of the harness's own tables, created by the driver in each run's database. */
export const chaosSchemaSql = `
  CREATE SCHEMA IF NOT EXISTS chaos;
  CREATE TABLE IF NOT EXISTS chaos.invocations (
    id bigserial PRIMARY KEY,
    effect_id uuid NOT NULL,
    effect text NOT NULL,
    workflow_id text NOT NULL,
    pid integer NOT NULL,
    worker text NOT NULL,
    attempt integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz,
    outcome text
  );
  CREATE INDEX IF NOT EXISTS invocations_effect_idx ON chaos.invocations (effect_id);
  -- B effects of the instances listed here fail (until the driver cures them).
  CREATE TABLE IF NOT EXISTS chaos.poison (workflow_id text PRIMARY KEY);
  -- Every transition of processed_at or dead_lettered_at of an outbox or timer row, with the
  -- lease holder before the change (for an ack: the worker that acked).
  CREATE TABLE IF NOT EXISTS chaos.transitions (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    row_id uuid NOT NULL,
    workflow_id text NOT NULL,
    what text NOT NULL,
    old_locked_by text,
    attempts integer NOT NULL,
    last_error text,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
  );
  CREATE OR REPLACE FUNCTION chaos.log_transition() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF OLD.processed_at IS DISTINCT FROM NEW.processed_at THEN
      INSERT INTO chaos.transitions (kind, row_id, workflow_id, what, old_locked_by, attempts, last_error)
      VALUES (TG_ARGV[0], NEW.id, NEW.workflow_id,
        CASE WHEN NEW.processed_at IS NULL THEN 'unprocessed' ELSE 'processed' END,
        OLD.locked_by, NEW.attempts, NEW.last_error);
    END IF;
    IF OLD.dead_lettered_at IS DISTINCT FROM NEW.dead_lettered_at THEN
      INSERT INTO chaos.transitions (kind, row_id, workflow_id, what, old_locked_by, attempts, last_error)
      VALUES (TG_ARGV[0], NEW.id, NEW.workflow_id,
        CASE WHEN NEW.dead_lettered_at IS NULL THEN 'revived' ELSE 'dead' END,
        OLD.locked_by, NEW.attempts, coalesce(NEW.last_error, OLD.last_error));
    END IF;
    RETURN NEW;
  END $$;
  DROP TRIGGER IF EXISTS chaos_outbox_transitions ON ironflow.outbox;
  CREATE TRIGGER chaos_outbox_transitions AFTER UPDATE ON ironflow.outbox FOR EACH ROW
    WHEN (OLD.processed_at IS DISTINCT FROM NEW.processed_at OR OLD.dead_lettered_at IS DISTINCT FROM NEW.dead_lettered_at)
    EXECUTE FUNCTION chaos.log_transition('effect');
  DROP TRIGGER IF EXISTS chaos_timers_transitions ON ironflow.timers;
  CREATE TRIGGER chaos_timers_transitions AFTER UPDATE ON ironflow.timers FOR EACH ROW
    WHEN (OLD.processed_at IS DISTINCT FROM NEW.processed_at OR OLD.dead_lettered_at IS DISTINCT FROM NEW.dead_lettered_at)
    EXECUTE FUNCTION chaos.log_transition('timer');
`

/**
 * The handler: records the invocation, sleeps a little, fails while its
 * instance is poisoned, then returns the result input for the workflow.
 */
export const ChaosHandler = ChaosWorkflow.handler((effect, ctx) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const behaviour = yield* HandlerBehaviour
    const [row] = yield* sql<{ id: string }>`
      INSERT INTO chaos.invocations (effect_id, effect, workflow_id, pid, worker, attempt)
      VALUES (${ctx.effectId}, ${effect._tag}, ${effect.id}, ${process.pid}, ${behaviour.worker}, ${ctx.attempt})
      RETURNING id`
    const [min, max] = behaviour.delayMs
    const delay = min + Math.floor(Math.random() * (max - min + 1))
    if (delay > 0) yield* Effect.sleep(Duration.millis(delay))
    const finish = (outcome: string) =>
      sql`UPDATE chaos.invocations SET finished_at = clock_timestamp(), outcome = ${outcome} WHERE id = ${row.id}`
    if (effect._tag === "DoB" && effect.poison) {
      const poisoned = yield* sql`SELECT 1 FROM chaos.poison WHERE workflow_id = ${effect.id}`
      if (poisoned.length > 0) {
        yield* finish("poisoned")
        return yield* new Poisoned({ id: effect.id })
      }
    }
    yield* finish("ok")
    return Option.some<ChaosInput>(
      effect._tag === "DoA" ? new AResult({ id: effect.id }) : new BResult({ id: effect.id })
    )
  })
)
