import type * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as WorkflowStore from "../../WorkflowStore.js"
import * as RealTime from "../realTime.js"
import { storableError } from "../storable.js"
import { date, isUuid, json, num, optionalDate, optionalString, queueTable, storeError } from "./rows.js"

// A uuid[] comes back as an array from PostgreSQL, as its text form ("{a,b}") from some drivers.
const uuidArray = (value: unknown): ReadonlyArray<string> =>
  Array.isArray(value)
    ? value.map(String)
    : typeof value === "string" && value.length > 2
    ? value.slice(1, -1).split(",")
    : []

/**
 * Claims, acks, failures, leases and dead letters of the effect outbox and
 * the timers.
 *
 * @internal
 */
export const make = (
  sql: SqlClient.SqlClient,
  wake: { readonly effects: Effect.Effect<void>; readonly timers: Effect.Effect<void> }
): Pick<
  WorkflowStore.WorkflowStore["Type"],
  | "claim"
  | "complete"
  | "fail"
  | "release"
  | "admit"
  | "releaseWaiting"
  | "extendLeases"
  | "nextTimerDue"
  | "fetchDeadLetters"
  | "countDeadLetters"
  | "retryDeadLetter"
  | "fetchPending"
> => {
  const table = (kind: WorkflowStore.QueueKind) => queueTable(sql, kind)

  const claim: WorkflowStore.WorkflowStore["Type"]["claim"] = (
    { exclude = [], kind, lease, limit, workerId, workflowTypes }
  ) =>
    Effect.gen(function*() {
      if (workflowTypes.length === 0 || limit <= 0) return []
      const now = yield* Clock.currentTimeMillis
      const at = new Date(now)
      const until = new Date(now + Duration.toMillis(lease))
      const rows = kind === "effect"
        ? yield* sql<Record<string, unknown>>`
          UPDATE ironflow.outbox AS o SET locked_until = ${until}, locked_by = ${workerId}, claimed_at = ${at}
          FROM (
            SELECT id FROM ironflow.outbox
            WHERE processed_at IS NULL AND dead_lettered_at IS NULL AND NOT awaiting_slot
              AND (locked_until IS NULL OR locked_until <= ${at})
              AND workflow_type = ANY(${workflowTypes}::text[])
              AND NOT (id = ANY(${exclude}::uuid[]))
            ORDER BY priority DESC, created_at, id
            LIMIT ${limit}
            FOR UPDATE SKIP LOCKED
          ) AS c
          WHERE o.id = c.id
          RETURNING o.id, o.workflow_type, o.workflow_id, o.payload, o.attempts, o.traceparent, o.tracestate, o.priority,
            (extract(epoch FROM o.created_at) * 1000)::float8 AS created_ms,
            (extract(epoch FROM o.created_at) * 1000)::float8 AS due_ms`
        : yield* sql<Record<string, unknown>>`
          UPDATE ironflow.timers AS t SET locked_until = ${until}, locked_by = ${workerId}, claimed_at = ${at}
          FROM (
            SELECT id FROM ironflow.timers
            WHERE processed_at IS NULL AND dead_lettered_at IS NULL
              AND fire_at <= ${at}
              AND (locked_until IS NULL OR locked_until <= ${at})
              AND workflow_type = ANY(${workflowTypes}::text[])
              AND NOT (id = ANY(${exclude}::uuid[]))
            ORDER BY priority DESC, fire_at, id
            LIMIT ${limit}
            FOR UPDATE SKIP LOCKED
          ) AS c
          WHERE t.id = c.id
          RETURNING t.id, t.workflow_type, t.workflow_id, t.input AS payload, t.attempts, t.traceparent, t.tracestate, t.priority,
            (extract(epoch FROM t.created_at) * 1000)::float8 AS created_ms,
            (extract(epoch FROM t.fire_at) * 1000)::float8 AS due_ms`
      // Times come back as epoch milliseconds: cheaper to read than timestamps, on the hottest query.
      return rows
        .map((row): WorkflowStore.ClaimedItem => ({
          kind,
          id: String(row.id),
          workflowType: String(row.workflow_type),
          workflowId: String(row.workflow_id),
          payload: json(row.payload),
          attempts: num(row.attempts),
          createdAt: new Date(num(row.created_ms)),
          dueAt: new Date(num(row.due_ms)),
          lockedBy: workerId,
          traceContext: typeof row.traceparent === "string"
            ? {
              traceparent: row.traceparent,
              tracestate: typeof row.tracestate === "string" ? row.tracestate : undefined
            }
            : undefined,
          priority: num(row.priority)
        }))
        // RETURNING has no order: claim order again (priority, then due time, then id).
        .sort((a, b) =>
          (b.priority ?? 0) - (a.priority ?? 0) || a.dueAt.getTime() - b.dueAt.getTime() ||
          (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
        )
    }).pipe(Effect.mapError(storeError(`claim ${kind}s`)))

  const complete: WorkflowStore.WorkflowStore["Type"]["complete"] = (kind, workerId, ids) =>
    Effect.gen(function*() {
      if (ids.length === 0) return []
      const at = new Date(yield* Clock.currentTimeMillis)
      const rows = yield* sql<{ id: unknown }>`
        UPDATE ${table(kind)} SET processed_at = ${at}, locked_until = NULL, locked_by = NULL
        WHERE id = ANY(${ids}::uuid[]) AND locked_by = ${workerId} AND processed_at IS NULL
        RETURNING id`
      return rows.map((row) => String(row.id))
    }).pipe(Effect.mapError(storeError(`complete ${kind}s`)))

  const fail: WorkflowStore.WorkflowStore["Type"]["fail"] = (kind, workerId, id, error, disposition, options) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const retryAt = disposition._tag === "RetryAfter" ? new Date(now + Duration.toMillis(disposition.delay)) : null
      const deadAt = disposition._tag === "RetryAfter" ? null : new Date(now)
      const handledAt = disposition._tag === "DeadLetterHandled" ? new Date(now) : null
      const rows = yield* sql<{ id: unknown }>`
        UPDATE ${table(kind)} SET attempts = attempts + 1, last_error = ${storableError(error)}, locked_by = NULL,
          locked_until = ${retryAt}::timestamptz, dead_lettered_at = ${deadAt}::timestamptz,
          processed_at = ${handledAt}::timestamptz${
        kind === "effect" && options?.timedOut === true ? sql`, timed_out_attempts = timed_out_attempts + 1` : sql``
      }
        WHERE id = ${id} AND locked_by = ${workerId} AND processed_at IS NULL
        RETURNING id`
      return rows.length > 0
    }).pipe(Effect.mapError(storeError(`record ${kind} failure`)))

  const release: WorkflowStore.WorkflowStore["Type"]["release"] = (kind, workerId, ids) =>
    ids.length === 0 ? Effect.void : sql`
      UPDATE ${table(kind)} SET locked_until = NULL, locked_by = NULL
      WHERE id = ANY(${ids}::uuid[]) AND locked_by = ${workerId} AND processed_at IS NULL`.pipe(
      Effect.asVoid,
      Effect.mapError(storeError(`release ${kind} leases`))
    )

  const admit: WorkflowStore.WorkflowStore["Type"]["admit"] = (workerId, rows) =>
    rows.length === 0 ? Effect.succeed([]) : Effect.gen(function*() {
      const at = new Date(yield* Clock.currentTimeMillis)
      const result = yield* sql<{ admitted: unknown }>`SELECT ironflow.admit_rows(
        ${at}, ${workerId}, ${rows.map((r) => r.id)}::uuid[],
        ${rows.map((r) => r.concurrency?.name ?? null)}::text[],
        ${rows.map((r) => r.concurrency?.limit ?? null)}::integer[],
        ${rows.map((r) => r.rate?.name ?? null)}::text[],
        ${rows.map((r) => r.rate?.limit ?? null)}::integer[],
        ${rows.map((r) => r.rate === undefined ? null : Math.max(1, Math.round(r.rate.perMillis)))}::bigint[]
      ) AS admitted`
      return uuidArray(result[0]?.admitted)
    }).pipe(Effect.mapError(storeError("admit effects under their limits")))

  const releaseWaiting: WorkflowStore.WorkflowStore["Type"]["releaseWaiting"] = (names) =>
    Effect.gen(function*() {
      const at = new Date(yield* Clock.currentTimeMillis)
      const rows = yield* sql<{ released: unknown }>`
        SELECT ironflow.release_waiting(${at}, ${names === undefined ? null : names}::text[]) AS released`
      const released = num(rows[0]?.released ?? 0)
      // Released rows are claimable now: wake the workers, here and in other processes.
      if (released > 0) yield* wake.effects
      return released
    }).pipe(Effect.mapError(storeError("release effects waiting for a slot")))

  const extendLeases: WorkflowStore.WorkflowStore["Type"]["extendLeases"] = (kind, workerId, ids, lease) =>
    ids.length === 0 ? Effect.void : Effect.gen(function*() {
      const until = new Date((yield* Clock.currentTimeMillis) + Duration.toMillis(lease))
      yield* sql`
        UPDATE ${table(kind)} SET locked_until = ${until}
        WHERE id = ANY(${ids}::uuid[]) AND locked_by = ${workerId} AND processed_at IS NULL`
    }).pipe(Effect.mapError(storeError(`extend ${kind} leases`)))

  const nextTimerDue: WorkflowStore.WorkflowStore["Type"]["nextTimerDue"] = (workflowTypes) =>
    workflowTypes.length === 0 ? Effect.succeed(Option.none()) : sql<{ due: unknown }>`
      SELECT min(due) AS due FROM (
        (SELECT fire_at AS due FROM ironflow.timers
         WHERE processed_at IS NULL AND dead_lettered_at IS NULL AND locked_until IS NULL
           AND workflow_type = ANY(${workflowTypes}::text[])
         ORDER BY fire_at LIMIT 1)
        UNION ALL
        (SELECT GREATEST(fire_at, locked_until) AS due FROM ironflow.timers
         WHERE processed_at IS NULL AND dead_lettered_at IS NULL AND locked_until IS NOT NULL
           AND workflow_type = ANY(${workflowTypes}::text[])
         ORDER BY GREATEST(fire_at, locked_until) LIMIT 1)
      ) AS candidates`.pipe(
      Effect.map((rows) => optionalDate(rows[0]?.due)),
      Effect.mapError(storeError("find the next due timer"))
    )

  const deadLetterFilter = (query: WorkflowStore.DeadLetterQuery) =>
    sql`processed_at IS NULL AND dead_lettered_at IS NOT NULL
      AND (${query.workflowType ?? null}::text IS NULL OR workflow_type = ${query.workflowType ?? null}::text)
      AND (${query.workflowId ?? null}::text IS NULL OR workflow_id = ${query.workflowId ?? null}::text)`

  const fetchDeadLetters: WorkflowStore.WorkflowStore["Type"]["fetchDeadLetters"] = (kind, query) =>
    sql<Record<string, unknown>>`
      SELECT id, workflow_type, workflow_id, ${kind === "effect" ? sql`payload` : sql`input`} AS payload,
        attempts, last_error, created_at, dead_lettered_at
      FROM ${table(kind)}
      WHERE ${deadLetterFilter(query)}
      ORDER BY created_at DESC, id DESC
      LIMIT ${query.limit ?? 100} OFFSET ${query.offset ?? 0}`.pipe(
      Effect.map((rows) =>
        rows.map((row): WorkflowStore.DeadLetter => ({
          kind,
          id: String(row.id),
          workflowType: String(row.workflow_type),
          workflowId: String(row.workflow_id),
          payload: json(row.payload),
          attempts: num(row.attempts),
          lastError: optionalString(row.last_error),
          createdAt: date(row.created_at),
          deadLetteredAt: date(row.dead_lettered_at)
        }))
      ),
      Effect.mapError(storeError(`fetch ${kind} dead letters`))
    )

  const countDeadLetters: WorkflowStore.WorkflowStore["Type"]["countDeadLetters"] = (kind, query) =>
    sql<{ count: unknown }>`SELECT count(*) AS count FROM ${table(kind)} WHERE ${deadLetterFilter(query)}`.pipe(
      Effect.map((rows) => num(rows[0].count)),
      Effect.mapError(storeError(`count ${kind} dead letters`))
    )

  const retryDeadLetter: WorkflowStore.WorkflowStore["Type"]["retryDeadLetter"] = (kind, id) =>
    !isUuid(id) ? Effect.succeed(false) : sql<{ id: unknown }>`
      UPDATE ${table(kind)} SET attempts = 0, last_error = NULL, locked_until = NULL, locked_by = NULL,
        dead_lettered_at = NULL${kind === "effect" ? sql`, timed_out_attempts = 0` : sql``}
      WHERE id = ${id}::uuid AND processed_at IS NULL AND dead_lettered_at IS NOT NULL
      RETURNING id`.pipe(
      Effect.map((rows) => rows.length > 0),
      // A retried row is runnable now: wake the workers, here and in other processes.
      Effect.tap((retried) => (retried ? (kind === "effect" ? wake.effects : wake.timers) : Effect.void)),
      Effect.mapError(storeError(`retry ${kind} dead letter`))
    )

  // What the workers poll (a claim, the next due timer, the rows waiting for a slot) is untraced: every poll
  // would record a root trace. The spans of claimed work come from the trace context stored on each row.
  return {
    claim: (options) => RealTime.untraced(claim(options)),
    complete,
    fail,
    release,
    admit,
    releaseWaiting: (names) => RealTime.untraced(releaseWaiting(names)),
    extendLeases,
    nextTimerDue: (workflowTypes) => RealTime.untraced(nextTimerDue(workflowTypes)),
    fetchDeadLetters,
    countDeadLetters,
    retryDeadLetter,
    fetchPending: (workflowType, workflowId) =>
      sql<Record<string, unknown>>`
        SELECT 'effect' AS kind, id, workflow_type, workflow_id, payload, NULL::text AS key, attempts, last_error,
          created_at AS due_at, locked_by, locked_until, created_at
        FROM ironflow.outbox
        WHERE workflow_type = ${workflowType} AND workflow_id = ${workflowId}
          AND processed_at IS NULL AND dead_lettered_at IS NULL
        UNION ALL
        SELECT 'timer' AS kind, id, workflow_type, workflow_id, input AS payload, key, attempts, last_error,
          fire_at AS due_at, locked_by, locked_until, created_at
        FROM ironflow.timers
        WHERE workflow_type = ${workflowType} AND workflow_id = ${workflowId}
          AND processed_at IS NULL AND dead_lettered_at IS NULL
        ORDER BY due_at, id`.pipe(
        Effect.map((rows) =>
          rows.map((row): WorkflowStore.PendingItem => ({
            kind: row.kind === "timer" ? "timer" : "effect",
            id: String(row.id),
            workflowType: String(row.workflow_type),
            workflowId: String(row.workflow_id),
            payload: json(row.payload),
            key: optionalString(row.key),
            attempts: num(row.attempts),
            lastError: optionalString(row.last_error),
            dueAt: date(row.due_at),
            lockedBy: optionalString(row.locked_by),
            lockedUntil: optionalDate(row.locked_until),
            createdAt: date(row.created_at)
          }))
        ),
        Effect.mapError(storeError("fetch pending effects and timers"))
      )
  }
}
