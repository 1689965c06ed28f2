import type * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { StoreError } from "../../WorkflowError.js"
import { type Calendar, type CatchUp, dueTicks } from "../calendar.js"
import { storableError } from "../storable.js"
import { uuidv7 } from "../uuid.js"
import { date, num, optionalDate, optionalString, storeError } from "./rows.js"

/** A schedule as declared in code, in its stored form. @internal */
export interface DefinitionRow {
  readonly name: string
  readonly workflowType: string
  readonly kind: "cron" | "interval"
  readonly expression: string
  readonly timeZone: string | null
  readonly catchUp: "skip" | "latest" | "all"
  readonly catchUpLimit: number | null
}

/** A declared schedule this process can fire: its calendar and how a tick becomes a timer's input. @internal */
export interface Compiled {
  readonly row: DefinitionRow
  readonly calendar: Calendar
  readonly catchUp: CatchUp
  /** The tick's input for its timer row (workflow id and encoded input), or why it cannot be built. */
  readonly build: (tick: Date) => Either.Either<{ readonly workflowId: string; readonly input: unknown }, string>
}

/** What became of the last tick of a schedule. @internal */
export interface OutcomeRow {
  readonly status: "waiting" | "pending" | "retrying" | "applied" | "dead-lettered" | "failed"
  readonly error: Option.Option<string>
}

/** @internal */
export interface TickRow {
  readonly id: string
  readonly scheduleName: string
  readonly key: string
  readonly source: "schedule" | "trigger"
  readonly tickAt: Date
  readonly createdAt: Date
  readonly firedAt: Option.Option<Date>
  readonly workflowId: Option.Option<string>
  readonly timerId: Option.Option<string>
  readonly outcome: OutcomeRow
}

/** @internal */
export interface ScheduleRow extends DefinitionRow {
  readonly nextTickAt: Option.Option<Date>
  readonly paused: boolean
  readonly createdAt: Date
  readonly updatedAt: Date
  readonly lastTick: Option.Option<TickRow>
}

/** @internal */
export interface PassReport {
  /** Tick rows created on the calendar. */
  readonly ticks: number
  /** Ticks handed to the timers (timer rows inserted). */
  readonly timers: number
  /** Ticks whose input could not be built. */
  readonly failed: number
  /** More unfired ticks may be waiting than one pass hands over: run the next pass at once. */
  readonly more: boolean
}

/** Fired ticks kept per schedule (for `list` and `ticks`); older ones are deleted as new ones fire. */
const keepTicks = 1000

/** Ticks handed over per pass at most; the rest go in the next pass, at once. */
const handOverLimit = 256

const outcomeOf = (row: Record<string, unknown>): OutcomeRow => {
  if (row.error !== null && row.error !== undefined) return { status: "failed", error: optionalString(row.error) }
  if (row.fired_at === null || row.fired_at === undefined) return { status: "waiting", error: Option.none() }
  // Retention deletes only processed timer rows: a tick whose timer is gone was applied.
  if (row.timer_found !== true) return { status: "applied", error: Option.none() }
  if (row.dead_lettered_at !== null && row.dead_lettered_at !== undefined) {
    return { status: "dead-lettered", error: optionalString(row.last_error) }
  }
  if (row.processed_at !== null && row.processed_at !== undefined) return { status: "applied", error: Option.none() }
  return num(row.attempts) > 0
    ? { status: "retrying", error: optionalString(row.last_error) }
    : { status: "pending", error: Option.none() }
}

const toTick = (row: Record<string, unknown>): TickRow => ({
  id: String(row.id),
  scheduleName: String(row.schedule_name),
  key: String(row.tick_key),
  source: row.source === "trigger" ? "trigger" : "schedule",
  tickAt: date(row.tick_at),
  createdAt: date(row.created_at),
  firedAt: optionalDate(row.fired_at),
  workflowId: optionalString(row.workflow_id),
  timerId: optionalString(row.timer_id),
  outcome: outcomeOf(row)
})

/**
 * The SQL of schedules: declaring them at start, the scheduler's pass, and
 * the operators' reads and commands.
 *
 * @internal
 */
export const make = (sql: SqlClient.SqlClient) => {
  /**
   * Upserts the declared schedules: a changed calendar (kind, expression,
   * time zone) clears the next tick, so the next pass computes it from the
   * current time; pause state is kept. Deletes the schedules of `ownedTypes`
   * that are not declared (their unfired ticks with them). Returns the names
   * deleted.
   */
  const sync = (
    now: number,
    rows: ReadonlyArray<DefinitionRow>,
    ownedTypes: ReadonlyArray<string>
  ): Effect.Effect<ReadonlyArray<string>, StoreError> =>
    Effect.gen(function*() {
      const at = new Date(now)
      if (rows.length > 0) {
        yield* sql`
          INSERT INTO ironflow.schedules AS s (name, workflow_type, kind, expression, time_zone, catch_up,
            catch_up_limit, next_tick_at, paused, created_at, updated_at)
          SELECT d.name, d.workflow_type, d.kind, d.expression, d.time_zone, d.catch_up, d.catch_up_limit,
            NULL, false, ${at}, ${at}
          FROM unnest(${rows.map((r) => r.name)}::text[], ${rows.map((r) => r.workflowType)}::text[],
            ${rows.map((r) => r.kind)}::text[], ${rows.map((r) => r.expression)}::text[],
            ${rows.map((r) => r.timeZone)}::text[], ${rows.map((r) => r.catchUp)}::text[],
            ${rows.map((r) => r.catchUpLimit)}::integer[])
            AS d(name, workflow_type, kind, expression, time_zone, catch_up, catch_up_limit)
          ON CONFLICT (name) DO UPDATE SET
            workflow_type = EXCLUDED.workflow_type, kind = EXCLUDED.kind, expression = EXCLUDED.expression,
            time_zone = EXCLUDED.time_zone, catch_up = EXCLUDED.catch_up, catch_up_limit = EXCLUDED.catch_up_limit,
            next_tick_at = CASE WHEN (s.kind, s.expression, s.time_zone)
              IS NOT DISTINCT FROM (EXCLUDED.kind, EXCLUDED.expression, EXCLUDED.time_zone) THEN s.next_tick_at END,
            updated_at = CASE WHEN (s.workflow_type, s.kind, s.expression, s.time_zone, s.catch_up, s.catch_up_limit)
              IS NOT DISTINCT FROM (EXCLUDED.workflow_type, EXCLUDED.kind, EXCLUDED.expression, EXCLUDED.time_zone,
                EXCLUDED.catch_up, EXCLUDED.catch_up_limit) THEN s.updated_at ELSE EXCLUDED.updated_at END`
      }
      if (ownedTypes.length === 0) return []
      const removed = yield* sql<{ name: unknown }>`
        DELETE FROM ironflow.schedules
        WHERE workflow_type = ANY(${ownedTypes}::text[]) AND NOT (name = ANY(${rows.map((r) => r.name)}::text[]))
        RETURNING name`
      return removed.map((r) => String(r.name))
    }).pipe(sql.withTransaction, Effect.mapError(storeError("declare schedules")))

  /**
   * One pass of the scheduler, in one transaction: locks the due schedules it
   * declares (skipping those another process holds), creates their ticks
   * (unique per schedule and time) and moves their next tick past `now`; then
   * hands every unfired tick of them (scheduled or triggered) to the timers:
   * the tick's input becomes a timer row due at the tick's time, in the same
   * transaction that marks the tick fired. `notify` runs in the transaction
   * when timers were written (a NOTIFY, delivered at commit).
   */
  const pass = (
    now: number,
    compiled: ReadonlyMap<string, Compiled>,
    graceMillis: number,
    notify: Effect.Effect<unknown, unknown>
  ): Effect.Effect<PassReport, StoreError> =>
    Effect.gen(function*() {
      const names = Array.from(compiled.keys())
      if (names.length === 0) return { ticks: 0, timers: 0, failed: 0, more: false }
      const at = new Date(now)
      const due = yield* sql<Record<string, unknown>>`
        SELECT name, kind, expression, time_zone, next_tick_at FROM ironflow.schedules
        WHERE name = ANY(${names}::text[]) AND NOT paused AND (next_tick_at IS NULL OR next_tick_at <= ${at})
        ORDER BY name
        FOR UPDATE SKIP LOCKED`
      const ticks: Array<{ readonly id: string; readonly name: string; readonly at: number }> = []
      const nexts: Array<{ readonly name: string; readonly next: string | null }> = []
      const touched: Array<string> = []
      for (const row of due) {
        const name = String(row.name)
        const schedule = compiled.get(name)
        // A calendar other than ours: another version of the application declared it last; it fires it.
        if (
          schedule === undefined || row.kind !== schedule.row.kind || row.expression !== schedule.row.expression ||
          (row.time_zone ?? null) !== schedule.row.timeZone
        ) continue
        if (row.next_tick_at !== null && row.next_tick_at !== undefined) {
          const from = date(row.next_tick_at).getTime()
          for (const tick of dueTicks(schedule.calendar, from, now, schedule.catchUp, graceMillis)) {
            ticks.push({ id: uuidv7(now), name, at: tick })
          }
          touched.push(name)
        }
        const next = schedule.calendar.firstAfter(now)
        nexts.push({ name, next: next === undefined ? null : new Date(next).toISOString() })
      }
      let created = 0
      if (ticks.length > 0) {
        const inserted = yield* sql<{ id: unknown }>`
          INSERT INTO ironflow.schedule_ticks (id, schedule_name, tick_key, tick_at, source, created_at)
          SELECT t.id, t.name, t.key, t.tick_at, 'schedule', ${at}
          FROM unnest(${ticks.map((t) => t.id)}::uuid[], ${ticks.map((t) => t.name)}::text[],
            ${ticks.map((t) => new Date(t.at).toISOString())}::text[],
            ${ticks.map((t) => new Date(t.at).toISOString())}::timestamptz[]) AS t(id, name, key, tick_at)
          ON CONFLICT (schedule_name, tick_key) DO NOTHING
          RETURNING id`
        created = inserted.length
      }
      if (nexts.length > 0) {
        yield* sql`
          UPDATE ironflow.schedules s SET next_tick_at = n.next
          FROM unnest(${nexts.map((n) => n.name)}::text[], ${nexts.map((n) => n.next)}::timestamptz[])
            AS n(name, next)
          WHERE s.name = n.name`
      }

      const unfired = yield* sql<Record<string, unknown>>`
        SELECT id, schedule_name, tick_at FROM ironflow.schedule_ticks
        WHERE fired_at IS NULL AND schedule_name = ANY(${names}::text[])
        ORDER BY tick_at, id
        LIMIT ${handOverLimit}
        FOR UPDATE SKIP LOCKED`
      const timers: Array<
        { readonly id: string; readonly type: string; readonly workflowId: string; readonly at: Date; input: string }
      > = []
      const fired: Array<
        {
          readonly id: string
          readonly timerId: string | null
          readonly workflowId: string | null
          readonly error: string | null
        }
      > = []
      for (const row of unfired) {
        const schedule = compiled.get(String(row.schedule_name))
        if (schedule === undefined) continue
        const tickAt = date(row.tick_at)
        const built = schedule.build(tickAt)
        if (Either.isLeft(built)) {
          fired.push({ id: String(row.id), timerId: null, workflowId: null, error: storableError(built.left) })
          continue
        }
        const timerId = uuidv7(now)
        timers.push({
          id: timerId,
          type: schedule.row.workflowType,
          workflowId: built.right.workflowId,
          at: tickAt,
          input: JSON.stringify(built.right.input)
        })
        fired.push({ id: String(row.id), timerId, workflowId: built.right.workflowId, error: null })
      }
      if (timers.length > 0) {
        yield* sql`
          INSERT INTO ironflow.timers (id, workflow_type, workflow_id, fire_at, input, created_at)
          SELECT t.id, t.workflow_type, t.workflow_id, t.fire_at, t.input::jsonb, ${at}
          FROM unnest(${timers.map((t) => t.id)}::uuid[], ${timers.map((t) => t.type)}::text[],
            ${timers.map((t) => t.workflowId)}::text[], ${timers.map((t) => t.at.toISOString())}::timestamptz[],
            ${timers.map((t) => t.input)}::text[]) AS t(id, workflow_type, workflow_id, fire_at, input)`
      }
      if (fired.length > 0) {
        yield* sql`
          UPDATE ironflow.schedule_ticks k
          SET fired_at = ${at}, timer_id = f.timer_id, workflow_id = f.workflow_id, error = f.error
          FROM unnest(${fired.map((f) => f.id)}::uuid[], ${fired.map((f) => f.timerId)}::uuid[],
            ${fired.map((f) => f.workflowId)}::text[], ${fired.map((f) => f.error)}::text[])
            AS f(id, timer_id, workflow_id, error)
          WHERE k.id = f.id`
      }
      if (touched.length > 0) {
        yield* sql`
          DELETE FROM ironflow.schedule_ticks k USING (
            SELECT n.name, c.tick_at AS cutoff FROM unnest(${touched}::text[]) AS n(name)
            CROSS JOIN LATERAL (
              SELECT r.tick_at FROM ironflow.schedule_ticks r WHERE r.schedule_name = n.name
              ORDER BY r.tick_at DESC LIMIT 1 OFFSET ${keepTicks - 1}
            ) c
          ) old
          WHERE k.schedule_name = old.name AND k.tick_at < old.cutoff AND k.fired_at IS NOT NULL`
      }
      if (timers.length > 0) yield* notify
      return {
        ticks: created,
        timers: timers.length,
        failed: fired.length - timers.length,
        more: unfired.length === handOverLimit
      }
    }).pipe(sql.withTransaction, Effect.mapError(storeError("run a scheduler pass")))

  /**
   * When the next pass has something to do for these schedules (unpaused, with
   * the calendar declared here): the earliest next tick, or the epoch when one
   * is still to be computed.
   */
  const nextDue = (rows: ReadonlyArray<DefinitionRow>): Effect.Effect<Option.Option<Date>, StoreError> =>
    rows.length === 0 ? Effect.succeed(Option.none()) : sql<{ due: unknown }>`
      SELECT min(coalesce(s.next_tick_at, 'epoch'::timestamptz)) AS due
      FROM ironflow.schedules s
      JOIN unnest(${rows.map((r) => r.name)}::text[], ${rows.map((r) => r.kind)}::text[],
        ${rows.map((r) => r.expression)}::text[], ${rows.map((r) => r.timeZone)}::text[])
        AS d(name, kind, expression, time_zone)
        ON s.name = d.name AND s.kind = d.kind AND s.expression = d.expression
          AND s.time_zone IS NOT DISTINCT FROM d.time_zone
      WHERE NOT s.paused`.pipe(
      Effect.map((rows) => optionalDate(rows[0]?.due)),
      Effect.mapError(storeError("find the next schedule tick"))
    )

  const tickColumns = sql`k.id, k.schedule_name, k.tick_key, k.source, k.tick_at, k.created_at, k.fired_at,
    k.workflow_id, k.timer_id, k.error, (t.id IS NOT NULL) AS timer_found, t.processed_at, t.dead_lettered_at,
    t.attempts, t.last_error`

  const list: Effect.Effect<ReadonlyArray<ScheduleRow>, StoreError> = sql<Record<string, unknown>>`
    SELECT s.name, s.workflow_type, s.kind, s.expression, s.time_zone, s.catch_up, s.catch_up_limit,
      s.next_tick_at, s.paused, s.created_at AS schedule_created_at, s.updated_at, (k.id IS NOT NULL) AS has_tick,
      ${tickColumns}
    FROM ironflow.schedules s
    LEFT JOIN LATERAL (
      SELECT * FROM ironflow.schedule_ticks x WHERE x.schedule_name = s.name
      ORDER BY x.tick_at DESC, x.created_at DESC LIMIT 1
    ) k ON true
    LEFT JOIN ironflow.timers t ON t.id = k.timer_id
    ORDER BY s.name`.pipe(
    Effect.map((rows) =>
      rows.map((row): ScheduleRow => ({
        name: String(row.name),
        workflowType: String(row.workflow_type),
        kind: row.kind === "interval" ? "interval" : "cron",
        expression: String(row.expression),
        timeZone: row.time_zone === null || row.time_zone === undefined ? null : String(row.time_zone),
        catchUp: row.catch_up === "all" ? "all" : row.catch_up === "latest" ? "latest" : "skip",
        catchUpLimit: row.catch_up_limit === null || row.catch_up_limit === undefined ? null : num(row.catch_up_limit),
        nextTickAt: optionalDate(row.next_tick_at),
        paused: row.paused === true,
        createdAt: date(row.schedule_created_at),
        updatedAt: date(row.updated_at),
        lastTick: row.has_tick === true ? Option.some(toTick({ ...row, schedule_name: row.name })) : Option.none()
      }))
    ),
    Effect.mapError(storeError("list schedules"))
  )

  const ticks = (name: string, limit: number): Effect.Effect<ReadonlyArray<TickRow>, StoreError> =>
    sql<Record<string, unknown>>`
      SELECT ${tickColumns}
      FROM ironflow.schedule_ticks k LEFT JOIN ironflow.timers t ON t.id = k.timer_id
      WHERE k.schedule_name = ${name}
      ORDER BY k.tick_at DESC, k.created_at DESC
      LIMIT ${limit}`.pipe(
      Effect.map((rows) => rows.map(toTick)),
      Effect.mapError(storeError("list schedule ticks"))
    )

  /** Pauses a schedule; false when there is none of that name. */
  const pause = (now: number, name: string): Effect.Effect<boolean, StoreError> =>
    sql<{ name: unknown }>`
      UPDATE ironflow.schedules SET paused = true, updated_at = CASE WHEN paused THEN updated_at ELSE ${new Date(
      now
    )} END
      WHERE name = ${name} RETURNING name`.pipe(
      Effect.map((rows) => rows.length > 0),
      Effect.mapError(storeError("pause a schedule"))
    )

  /** Resumes a paused schedule: its next tick is computed from the current time (ticks of the pause are not fired). */
  const resume = (now: number, name: string): Effect.Effect<boolean, StoreError> =>
    sql<{ name: unknown }>`
      UPDATE ironflow.schedules SET paused = false,
        next_tick_at = CASE WHEN paused THEN NULL ELSE next_tick_at END,
        updated_at = CASE WHEN paused THEN ${new Date(now)} ELSE updated_at END
      WHERE name = ${name} RETURNING name`.pipe(
      Effect.map((rows) => rows.length > 0),
      Effect.mapError(storeError("resume a schedule"))
    )

  /** Inserts a triggered tick (its own unique key) that a runtime declaring the schedule fires; none when unknown. */
  const trigger = (now: number, name: string): Effect.Effect<Option.Option<TickRow>, StoreError> =>
    Effect.gen(function*() {
      const id = uuidv7(now)
      const at = new Date(now)
      const rows = yield* sql<Record<string, unknown>>`
        INSERT INTO ironflow.schedule_ticks (id, schedule_name, tick_key, tick_at, source, created_at)
        SELECT ${id}::uuid, name, ${`trigger:${id}`}, ${at}, 'trigger', ${at}
        FROM ironflow.schedules WHERE name = ${name}
        RETURNING id, schedule_name, tick_key, source, tick_at, created_at, fired_at, workflow_id, timer_id, error`
      return rows.length === 0 ? Option.none() : Option.some(toTick(rows[0]))
    }).pipe(Effect.mapError(storeError("trigger a schedule")))

  return { sync, pass, nextDue, list, ticks, pause, resume, trigger }
}
