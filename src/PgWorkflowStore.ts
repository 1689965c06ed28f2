/**
 * `WorkflowStore` on PostgreSQL through `@effect/sql` (`SqlClient`): real
 * PostgreSQL with `@effect/sql-pg`, or the embedded database with
 * `PgliteClient`. The layer applies the migrations when it starts.
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as PgListener from "./internal/pgListener.js"
import * as Signal from "./internal/signal.js"
import { uuidv7 } from "./internal/uuid.js"
import * as Migrations from "./Migrations.js"
import { StoreError, UniqueKeyConflict } from "./WorkflowError.js"
import * as WorkflowStore from "./WorkflowStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Apply the migrations when the layer starts (default true). */
  readonly migrate?: boolean | undefined
  /**
   * Wake workers of other processes with LISTEN/NOTIFY. Default: on when the
   * `SqlClient` is a `PgClient` (real PostgreSQL), off otherwise (the
   * embedded database serves one process, which is woken in-process).
   */
  readonly notifications?: boolean | undefined
}

/**
 * The notification channel that wakes workers of other processes; the
 * payload names what is waiting: `effects`, `timers`, or both.
 *
 * @since 0.1.0
 * @category constants
 */
export const wakeupChannel = "ironflow_wakeup"

// First key of the projections' advisory locks: "iron" in ASCII.
const PROJECTION_LOCK_SPACE = 0x69726f6e

const UNIQUE_KEY_INDEX = "idx_workflow_instances_active_unique_key"

class RollbackSignal<A> {
  constructor(readonly value: A) {}
}

const isUuid = (u: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(u)

const num = (u: unknown): number => (typeof u === "number" ? u : Number(u))
const date = (u: unknown): Date => (u instanceof Date ? u : new Date(String(u)))
const optionalDate = (
  u: unknown
): Option.Option<Date> => (u === null || u === undefined ? Option.none() : Option.some(date(u)))
const optionalString = (
  u: unknown
): Option.Option<string> => (u === null || u === undefined ? Option.none() : Option.some(String(u)))
// Both drivers return jsonb columns already parsed (a JSON string arrives as a JS string).
const json = (u: unknown): unknown => u

const parseTextArray = (u: unknown): ReadonlyArray<string> => {
  if (Array.isArray(u)) return u.map(String)
  // Drivers without array parsing return the literal form, e.g. {a,"b c"}.
  const text = String(u ?? "")
  if (text === "{}" || text === "") return []
  return text.slice(1, -1).split(",").map((item) => item.replace(/^"(.*)"$/, "$1"))
}

const isUniqueKeyViolation = (error: SqlError): boolean => {
  const cause = error.cause as { code?: unknown; constraint?: unknown; message?: unknown } | undefined
  return cause?.code === "23505" &&
    (cause.constraint === UNIQUE_KEY_INDEX || String(cause.message ?? "").includes(UNIQUE_KEY_INDEX))
}

const storeError = (operation: string) => (cause: unknown) =>
  cause instanceof StoreError ? cause : new StoreError({ operation, cause })

/**
 * Builds the store over the `SqlClient` in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<WorkflowStore.WorkflowStore["Type"], StoreError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    if (options.migrate !== false) yield* Migrations.run
    const pg = yield* Effect.serviceOption(PgClient.PgClient)
    const notifications = options.notifications ?? Option.isSome(pg)

    const wakeups: WorkflowStore.Wakeups = {
      effects: yield* Signal.make,
      timers: yield* Signal.make,
      events: yield* Signal.make
    }

    // Coalesced NOTIFY on one channel, sent after commit, outside the writing transaction: one in flight at
    // a time, and every commit that happens while it is in flight is covered by the next one. The payload
    // names what is waiting ("effects", "timers" or both); it is never empty, because listeners drop
    // notifications without a payload.
    const pending = { effects: false, timers: false }
    const notifyRemote = yield* Effect.gen(function*() {
      if (!notifications) return (_kind: "effects" | "timers") => Effect.void
      const latch = yield* Effect.makeLatch(false)
      yield* latch.await.pipe(
        Effect.zipRight(latch.close),
        Effect.zipRight(Effect.suspend(() => {
          const payload = [pending.effects ? "effects" : "", pending.timers ? "timers" : ""].filter(Boolean).join(",")
          pending.effects = false
          pending.timers = false
          return sql`SELECT pg_notify(${wakeupChannel}, ${payload})`
        })),
        Effect.catchAllCause((cause) =>
          Effect.logDebug("ironflow: NOTIFY failed; workers fall back to polling", cause)
        ),
        Effect.forever,
        Effect.interruptible,
        Effect.forkScoped
      )
      return (kind: "effects" | "timers") =>
        Effect.suspend(() => {
          pending[kind] = true
          return latch.open
        })
    })
    const notifyEffectsRemote = notifyRemote("effects")
    const notifyTimersRemote = notifyRemote("timers")

    if (notifications && Option.isSome(pg)) {
      yield* PgListener.listen(pg.value.config, wakeupChannel, (payload) =>
        Effect.zipRight(
          payload.includes("effects") || payload === "reconnected" ? wakeups.effects.notify : Effect.void,
          payload.includes("timers") || payload === "reconnected" ? wakeups.timers.notify : Effect.void
        ))
    }

    const readSnapshot = (row: {
      snapshot_sequence: unknown
      snapshot_data: unknown
      snapshot_version: unknown
    }, version: string | undefined): Option.Option<WorkflowStore.Snapshot> =>
      version === undefined || row.snapshot_sequence === null || row.snapshot_sequence === undefined ||
        row.snapshot_version !== version
        ? Option.none()
        : Option.some({
          sequence: num(row.snapshot_sequence),
          state: json(row.snapshot_data),
          version: String(row.snapshot_version)
        })

    const loadEventsAfter = (workflowType: string, workflowId: string, after: number) =>
      sql<{ sequence: unknown; payload: unknown; event_version: unknown }>`
        SELECT sequence, payload, event_version FROM ironflow.events
        WHERE workflow_type = ${workflowType} AND workflow_id = ${workflowId} AND sequence > ${after}
        ORDER BY sequence`.pipe(
        Effect.map((rows) =>
          rows.map((row): WorkflowStore.LoadedEvent => ({
            sequence: num(row.sequence),
            payload: json(row.payload),
            version: num(row.event_version)
          }))
        )
      )

    /** Writes an accepted decision in one call (see migration 0008). Returns the timers actually scheduled. */
    const write = (
      workflowType: string,
      workflowId: string,
      nextSequence: number,
      now: number,
      writes: WorkflowStore.Writes
    ) =>
      Effect.gen(function*() {
        // A keyed timer scheduled twice in one decision: the last one wins, as two upserts would.
        const timers: Array<WorkflowStore.TimerRequest> = []
        const keyed = new Map<string, number>()
        for (const timer of writes.timers) {
          if (Option.isSome(timer.key)) {
            const index = keyed.get(timer.key.value)
            if (index !== undefined) {
              timers[index] = timer
              continue
            }
            keyed.set(timer.key.value, timers.length)
          }
          timers.push(timer)
        }
        const observation = Option.getOrUndefined(writes.observation)
        const snapshot = Option.getOrUndefined(writes.snapshot)
        yield* sql`SELECT ironflow.append_decision(
          ${workflowType}, ${workflowId}, ${new Date(now)}, ${nextSequence}, ${writes.eventVersion ?? 1},
          ${writes.events.map((e) => JSON.stringify(e))}::text[],
          ${writes.effects.map(() => uuidv7(now))}::uuid[],
          ${writes.effects.map((e) => JSON.stringify(e))}::text[],
          ${writes.cancelTimers}::text[],
          ${timers.map(() => uuidv7(now))}::uuid[],
          ${timers.map((t) => new Date(now + Duration.toMillis(t.delay)).toISOString())}::timestamptz[],
          ${timers.map((t) => JSON.stringify(t.input))}::text[],
          ${timers.map((t) => Option.getOrNull(t.key))}::text[],
          ${writes.completed},
          ${observation?.inputType ?? null}::text,
          ${observation === undefined ? null : JSON.stringify(observation.payload ?? null)}::text,
          ${snapshot?.sequence ?? null}::bigint,
          ${snapshot === undefined ? null : JSON.stringify(snapshot.state)}::text,
          ${snapshot?.version ?? null}::text
        )`
        return timers
      })

    const withInstance: WorkflowStore.WorkflowStore["Type"]["withInstance"] = (instance, body) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const { workflowId, workflowType } = instance
        const result = yield* Effect.gen(function*() {
          const [row] = yield* sql<
            { out_completed: boolean; out_snapshot_sequence: unknown; out_snapshot_data: unknown; out_events: unknown }
          >`SELECT * FROM ironflow.lock_instance(
              ${workflowType}, ${workflowId}, ${Option.getOrNull(instance.uniqueKey)}::text, ${new Date(now)},
              ${instance.snapshotVersion ?? null}::text)`.pipe(
            Effect.catchIf(
              isUniqueKeyViolation,
              () => new UniqueKeyConflict({ workflowType, uniqueKey: Option.getOrElse(instance.uniqueKey, () => "") })
            )
          )
          if (row.out_completed) return { _tag: "Completed" } as const
          const snapshot = readSnapshot(
            {
              snapshot_sequence: row.out_snapshot_sequence,
              snapshot_data: row.out_snapshot_data,
              snapshot_version: instance.snapshotVersion ?? null
            },
            instance.snapshotVersion
          )
          const events = (json(row.out_events) as ReadonlyArray<readonly [unknown, unknown, unknown]>).map((
            [sequence, version, payload]
          ): WorkflowStore.LoadedEvent => ({ sequence: num(sequence), version: num(version), payload }))
          const nextSequence = events.length > 0
            ? events[events.length - 1].sequence + 1
            : Option.match(snapshot, { onNone: () => 1, onSome: (s) => s.sequence + 1 })
          const unit = yield* body({
            snapshot,
            events,
            nextSequence,
            now,
            loadAllEvents: Effect.mapError(loadEventsAfter(workflowType, workflowId, 0), storeError("load events"))
          })
          if (unit._tag === "Rollback") return yield* Effect.fail(new RollbackSignal(unit.value))
          const timers = yield* write(workflowType, workflowId, nextSequence, now, unit.writes)
          return { _tag: "Committed", value: unit.value, writes: unit.writes, timers } as const
        }).pipe(
          sql.withTransaction,
          Effect.catchIf(
            (e): e is RollbackSignal<any> => e instanceof RollbackSignal,
            (signal) => Effect.succeed({ _tag: "RolledBack", value: signal.value } as const)
          ),
          Effect.mapError((e) => isSqlError(e) ? new StoreError({ operation: "execute", cause: e }) : e)
        )
        switch (result._tag) {
          case "Completed":
            return result
          case "RolledBack":
            return { _tag: "Done", value: result.value, committed: false } as const
          case "Committed": {
            if (result.writes.events.length > 0) yield* wakeups.events.notify
            if (result.writes.effects.length > 0) {
              yield* wakeups.effects.notify
              yield* notifyEffectsRemote
            }
            if (result.timers.length > 0) {
              yield* wakeups.timers.notify
              yield* notifyTimersRemote
            }
            return { _tag: "Done", value: result.value, committed: true } as const
          }
        }
      })

    const table = (kind: WorkflowStore.QueueKind) => kind === "effect" ? sql("ironflow.outbox") : sql("ironflow.timers")

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
            UPDATE ironflow.outbox AS o SET locked_until = ${until}, locked_by = ${workerId}
            FROM (
              SELECT id FROM ironflow.outbox
              WHERE processed_at IS NULL AND dead_lettered_at IS NULL
                AND (locked_until IS NULL OR locked_until <= ${at})
                AND workflow_type = ANY(${workflowTypes}::text[])
                AND NOT (id = ANY(${exclude}::uuid[]))
              ORDER BY created_at, id
              LIMIT ${limit}
              FOR UPDATE SKIP LOCKED
            ) AS c
            WHERE o.id = c.id
            RETURNING o.id, o.workflow_type, o.workflow_id, o.payload, o.attempts,
              (extract(epoch FROM o.created_at) * 1000)::float8 AS created_ms,
              (extract(epoch FROM o.created_at) * 1000)::float8 AS due_ms`
          : yield* sql<Record<string, unknown>>`
            UPDATE ironflow.timers AS t SET locked_until = ${until}, locked_by = ${workerId}
            FROM (
              SELECT id FROM ironflow.timers
              WHERE processed_at IS NULL AND dead_lettered_at IS NULL
                AND fire_at <= ${at}
                AND (locked_until IS NULL OR locked_until <= ${at})
                AND workflow_type = ANY(${workflowTypes}::text[])
                AND NOT (id = ANY(${exclude}::uuid[]))
              ORDER BY fire_at, id
              LIMIT ${limit}
              FOR UPDATE SKIP LOCKED
            ) AS c
            WHERE t.id = c.id
            RETURNING t.id, t.workflow_type, t.workflow_id, t.input AS payload, t.attempts,
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
            lockedBy: workerId
          }))
          .sort((a, b) => a.dueAt.getTime() - b.dueAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
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

    const fail: WorkflowStore.WorkflowStore["Type"]["fail"] = (kind, workerId, id, error, disposition) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const retryAt = disposition._tag === "RetryAfter" ? new Date(now + Duration.toMillis(disposition.delay)) : null
        const deadAt = disposition._tag === "RetryAfter" ? null : new Date(now)
        const handledAt = disposition._tag === "DeadLetterHandled" ? new Date(now) : null
        const rows = yield* sql<{ id: unknown }>`
          UPDATE ${table(kind)} SET attempts = attempts + 1, last_error = ${error}, locked_by = NULL,
            locked_until = ${retryAt}::timestamptz, dead_lettered_at = ${deadAt}::timestamptz,
            processed_at = ${handledAt}::timestamptz
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
          dead_lettered_at = NULL
        WHERE id = ${id}::uuid AND processed_at IS NULL AND dead_lettered_at IS NOT NULL
        RETURNING id`.pipe(
        Effect.map((rows) => rows.length > 0),
        Effect.tap((retried) =>
          retried ? (kind === "effect" ? wakeups.effects.notify : wakeups.timers.notify) : Effect.void
        ),
        Effect.tap((
          retried
        ) => (retried ? (kind === "effect" ? notifyEffectsRemote : notifyTimersRemote) : Effect.void)),
        Effect.mapError(storeError(`retry ${kind} dead letter`))
      )

    const toStoredEvent = (row: Record<string, unknown>): WorkflowStore.StoredEvent => ({
      globalSequence: num(row.global_sequence),
      workflowType: String(row.workflow_type),
      workflowId: String(row.workflow_id),
      sequence: num(row.sequence),
      payload: json(row.payload),
      version: num(row.event_version ?? 1),
      createdAt: date(row.created_at)
    })

    const toSummary = (row: Record<string, unknown>): WorkflowStore.WorkflowInstanceSummary => ({
      workflowType: String(row.workflow_type),
      workflowId: String(row.workflow_id),
      createdAt: date(row.created_at),
      eventCount: num(row.event_count),
      lastEventAt: optionalDate(row.last_event_at),
      completedAt: optionalDate(row.completed_at)
    })

    const store: WorkflowStore.WorkflowStore["Type"] = {
      withInstance,
      recordObservation: (observation) =>
        Effect.gen(function*() {
          const at = new Date(yield* Clock.currentTimeMillis)
          const rejection = observation.outcome._tag === "Rejected"
            ? JSON.stringify(observation.outcome.rejection ?? null)
            : null
          yield* sql`
            INSERT INTO ironflow.input_observations
              (workflow_type, workflow_id, input_type, payload, outcome, rejection_payload, observed_at)
            VALUES (${observation.workflowType}, ${observation.workflowId}, ${observation.inputType},
              ${JSON.stringify(observation.payload ?? null)}::jsonb, ${WorkflowStore.outcomeName(observation.outcome)},
              ${rejection}::jsonb, ${at})`
        }).pipe(Effect.mapError(storeError("record an input observation"))),
      fetchObservations: (workflowType, workflowId) =>
        sql<Record<string, unknown>>`
          SELECT id, workflow_type, workflow_id, input_type, payload, outcome, rejection_payload, observed_at
          FROM ironflow.input_observations
          WHERE workflow_type = ${workflowType} AND workflow_id = ${workflowId}
          ORDER BY observed_at, id`.pipe(
          Effect.map((rows) =>
            rows.map((row): WorkflowStore.StoredObservation => ({
              id: num(row.id),
              workflowType: String(row.workflow_type),
              workflowId: String(row.workflow_id),
              inputType: String(row.input_type),
              payload: json(row.payload),
              outcome: row.outcome === "rejected"
                ? WorkflowStore.ObservationOutcome.Rejected({ rejection: json(row.rejection_payload) })
                : row.outcome === "already_completed"
                ? WorkflowStore.ObservationOutcome.AlreadyCompleted()
                : WorkflowStore.ObservationOutcome.Accepted(),
              observedAt: date(row.observed_at)
            }))
          ),
          Effect.mapError(storeError("fetch input observations"))
        ),
      fetchEvents: (workflowType, workflowId) =>
        sql<Record<string, unknown>>`
          SELECT global_sequence, workflow_type, workflow_id, sequence, payload, event_version, created_at
          FROM ironflow.events
          WHERE workflow_type = ${workflowType} AND workflow_id = ${workflowId}
          ORDER BY sequence`.pipe(
          Effect.map((rows) => rows.map(toStoredEvent)),
          Effect.mapError(storeError("fetch workflow events"))
        ),
      loadState: (workflowType, workflowId, snapshotVersion) =>
        Effect.gen(function*() {
          const rows = yield* sql<{ snapshot_sequence: unknown; snapshot_data: unknown; snapshot_version: unknown }>`
            SELECT snapshot_sequence, snapshot_data, snapshot_version FROM ironflow.workflow_instances
            WHERE workflow_type = ${workflowType} AND workflow_id = ${workflowId}`
          const snapshot = rows.length === 0 ? Option.none() : readSnapshot(rows[0], snapshotVersion)
          const events = yield* loadEventsAfter(
            workflowType,
            workflowId,
            Option.match(snapshot, { onNone: () => 0, onSome: (s) => s.sequence })
          )
          return { snapshot, events }
        }).pipe(Effect.mapError(storeError("load workflow state"))),
      listInstances: ({ limit, offset, workflowType }) =>
        sql<Record<string, unknown>>`
          SELECT workflow_type, workflow_id, created_at, event_count, last_event_at, completed_at
          FROM ironflow.workflow_instances
          WHERE (${workflowType ?? null}::text IS NULL OR workflow_type = ${workflowType ?? null}::text)
          ORDER BY last_event_at DESC NULLS LAST, created_at DESC, workflow_type, workflow_id
          LIMIT ${limit} OFFSET ${offset}`.pipe(
          Effect.map((rows) => rows.map(toSummary)),
          Effect.mapError(storeError("list workflows"))
        ),
      fetchInstance: (workflowType, workflowId) =>
        sql<Record<string, unknown>>`
          SELECT workflow_type, workflow_id, created_at, event_count, last_event_at, completed_at
          FROM ironflow.workflow_instances
          WHERE workflow_type = ${workflowType} AND workflow_id = ${workflowId}`.pipe(
          Effect.map((rows) => rows.length === 0 ? Option.none() : Option.some(toSummary(rows[0]))),
          Effect.mapError(storeError("fetch a workflow instance"))
        ),
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
        ),
      claim,
      complete,
      fail,
      release,
      extendLeases,
      nextTimerDue,
      fetchDeadLetters,
      countDeadLetters,
      retryDeadLetter,
      fetchEventsSince: (after, limit) =>
        sql<Record<string, unknown>>`
          SELECT global_sequence, workflow_type, workflow_id, sequence, payload, event_version, created_at
          FROM ironflow.events WHERE global_sequence > ${after}
          ORDER BY global_sequence LIMIT ${limit}`.pipe(
          Effect.map((rows) => rows.map(toStoredEvent)),
          Effect.mapError(storeError("fetch events since a global sequence"))
        ),
      loadProjectionPosition: (name) =>
        Effect.gen(function*() {
          yield* sql`INSERT INTO ironflow.projection_positions (projection_name) VALUES (${name})
            ON CONFLICT (projection_name) DO NOTHING`
          const rows = yield* sql<{ last_sequence: unknown }>`
            SELECT last_sequence FROM ironflow.projection_positions WHERE projection_name = ${name}`
          return num(rows[0].last_sequence)
        }).pipe(Effect.mapError(storeError("load a projection position"))),
      storeProjectionPosition: (name, globalSequence) =>
        Effect.gen(function*() {
          const at = new Date(yield* Clock.currentTimeMillis)
          yield* sql`UPDATE ironflow.projection_positions SET last_sequence = ${globalSequence}, updated_at = ${at}
            WHERE projection_name = ${name}`
        }).pipe(Effect.mapError(storeError("store a projection position"))),
      projectionTick: (name, workflowTypes, limit, body) =>
        Effect.gen(function*() {
          const [lock] = yield* sql<{ locked: boolean }>`
            SELECT pg_try_advisory_xact_lock(${PROJECTION_LOCK_SPACE}, hashtext(${name})) AS locked`
          if (!lock.locked) return Option.none()
          // Read before writing anything, so this transaction has no id yet and does not hold back xmin.
          const [position = { last_sequence: 0, last_transaction_id: "0" }] = yield* sql<
            { last_sequence: unknown; last_transaction_id: unknown }
          >`
            SELECT last_sequence, last_transaction_id::text AS last_transaction_id
            FROM ironflow.projection_positions WHERE projection_name = ${name}`
          const rows = workflowTypes.length === 0 ? [] : yield* sql<Record<string, unknown>>`
            SELECT global_sequence, workflow_type, workflow_id, sequence, payload, event_version, created_at,
              transaction_id::text AS transaction_id
            FROM ironflow.events
            WHERE (transaction_id, global_sequence) > (${String(position.last_transaction_id)}::xid8, ${
            num(position.last_sequence)
          }::bigint)
              AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
              AND workflow_type = ANY(${workflowTypes}::text[])
            ORDER BY transaction_id, global_sequence
            LIMIT ${limit}`
          const events = rows.map((row): WorkflowStore.CommittedEvent => ({
            ...toStoredEvent(row),
            transactionId: String(row.transaction_id)
          }))
          const { applied, value } = yield* body(events)
          if (applied > 0) {
            const last = events[applied - 1]
            const at = new Date(yield* Clock.currentTimeMillis)
            yield* sql`INSERT INTO ironflow.projection_positions
                (projection_name, last_sequence, last_transaction_id, updated_at)
              VALUES (${name}, ${last.globalSequence}, ${last.transactionId}::xid8, ${at})
              ON CONFLICT (projection_name) DO UPDATE SET last_sequence = EXCLUDED.last_sequence,
                last_transaction_id = EXCLUDED.last_transaction_id, updated_at = EXCLUDED.updated_at`
          }
          return Option.some(value)
        }).pipe(
          sql.withTransaction,
          Effect.mapError((e) => isSqlError(e) ? new StoreError({ operation: `projection ${name}`, cause: e }) : e)
        ),
      resetProjection: (name, reset) =>
        Effect.gen(function*() {
          yield* sql`SELECT pg_advisory_xact_lock(${PROJECTION_LOCK_SPACE}, hashtext(${name}))`
          yield* reset
          const at = new Date(yield* Clock.currentTimeMillis)
          yield* sql`INSERT INTO ironflow.projection_positions (projection_name, last_sequence, last_transaction_id, updated_at)
            VALUES (${name}, 0, '0'::xid8, ${at})
            ON CONFLICT (projection_name) DO UPDATE SET last_sequence = 0, last_transaction_id = '0'::xid8,
              updated_at = EXCLUDED.updated_at`
        }).pipe(
          sql.withTransaction,
          Effect.mapError((e) =>
            isSqlError(e) ? new StoreError({ operation: `reset projection ${name}`, cause: e }) : e
          )
        ),
      projectionPositions: sql<Record<string, unknown>>`
        SELECT p.projection_name, p.last_sequence, p.last_transaction_id::text AS last_transaction_id, p.updated_at,
          (SELECT count(*) FROM ironflow.events e
           WHERE (e.transaction_id, e.global_sequence) > (p.last_transaction_id, p.last_sequence)) AS behind
        FROM ironflow.projection_positions p ORDER BY p.projection_name`.pipe(
        Effect.map((rows) =>
          rows.map((row): WorkflowStore.ProjectionPosition => ({
            name: String(row.projection_name),
            lastSequence: num(row.last_sequence),
            lastTransactionId: String(row.last_transaction_id),
            updatedAt: date(row.updated_at),
            eventsBehind: num(row.behind)
          }))
        ),
        Effect.mapError(storeError("read projection positions"))
      ),
      prune: ({ batchSize, completedInstances, cutoff, dryRun }) =>
        Effect.gen(function*() {
          // Instances whose rows may go: completed before the cutoff, nothing pending or dead, and every
          // projection past their events (the slowest checkpoint, in commit order).
          const prunable = sql`
            i.completed_at IS NOT NULL AND i.completed_at < ${cutoff}
            AND NOT EXISTS (SELECT 1 FROM ironflow.outbox o
              WHERE o.workflow_type = i.workflow_type AND o.workflow_id = i.workflow_id AND o.processed_at IS NULL)
            AND NOT EXISTS (SELECT 1 FROM ironflow.timers t
              WHERE t.workflow_type = i.workflow_type AND t.workflow_id = i.workflow_id AND t.processed_at IS NULL)
            AND NOT EXISTS (SELECT 1 FROM ironflow.events e
              JOIN (SELECT last_transaction_id, last_sequence FROM ironflow.projection_positions
                    ORDER BY last_transaction_id, last_sequence LIMIT 1) slowest ON true
              WHERE e.workflow_type = i.workflow_type AND e.workflow_id = i.workflow_id
                AND (e.transaction_id, e.global_sequence) > (slowest.last_transaction_id, slowest.last_sequence))`
          if (dryRun) {
            const [counts] = yield* sql<Record<string, unknown>>`
              SELECT
                (SELECT count(*) FROM ironflow.outbox WHERE processed_at < ${cutoff}) AS outbox,
                (SELECT count(*) FROM ironflow.timers WHERE processed_at < ${cutoff}) AS timers,
                ${completedInstances}::boolean AS with_instances`
            const [instances] = completedInstances
              ? yield* sql<Record<string, unknown>>`
                SELECT count(*) AS instances,
                  coalesce(sum(i.event_count), 0) AS events,
                  (SELECT count(*) FROM ironflow.input_observations ob JOIN ironflow.workflow_instances i
                    ON ob.workflow_type = i.workflow_type AND ob.workflow_id = i.workflow_id WHERE ${prunable}) AS observations
                FROM ironflow.workflow_instances i WHERE ${prunable}`
              : [{ instances: 0, events: 0, observations: 0 }]
            return {
              dryRun,
              cutoff,
              outbox: num(counts.outbox),
              timers: num(counts.timers),
              instances: num(instances.instances),
              events: num(instances.events),
              observations: num(instances.observations)
            }
          }
          const deleteProcessed = (kind: WorkflowStore.QueueKind) =>
            Effect.gen(function*() {
              let total = 0
              while (true) {
                const rows = yield* sql<{ n: unknown }>`
                  WITH gone AS (
                    DELETE FROM ${table(kind)} WHERE id IN (
                      SELECT id FROM ${table(kind)} WHERE processed_at < ${cutoff}
                      LIMIT ${batchSize} FOR UPDATE SKIP LOCKED)
                    RETURNING 1)
                  SELECT count(*) AS n FROM gone`
                const n = num(rows[0].n)
                total += n
                if (n < batchSize) return total
              }
            })
          const outbox = yield* deleteProcessed("effect")
          const timers = yield* deleteProcessed("timer")
          let instances = 0
          let events = 0
          let observations = 0
          while (completedInstances) {
            const [batch] = yield* sql<Record<string, unknown>>`
              WITH doomed AS (
                SELECT i.workflow_type, i.workflow_id FROM ironflow.workflow_instances i
                WHERE ${prunable}
                LIMIT ${batchSize} FOR UPDATE SKIP LOCKED
              ), e AS (
                DELETE FROM ironflow.events x USING doomed d
                WHERE x.workflow_type = d.workflow_type AND x.workflow_id = d.workflow_id RETURNING 1
              ), ob AS (
                DELETE FROM ironflow.input_observations x USING doomed d
                WHERE x.workflow_type = d.workflow_type AND x.workflow_id = d.workflow_id RETURNING 1
              ), o AS (
                DELETE FROM ironflow.outbox x USING doomed d
                WHERE x.workflow_type = d.workflow_type AND x.workflow_id = d.workflow_id RETURNING 1
              ), t AS (
                DELETE FROM ironflow.timers x USING doomed d
                WHERE x.workflow_type = d.workflow_type AND x.workflow_id = d.workflow_id RETURNING 1
              ), i AS (
                DELETE FROM ironflow.workflow_instances x USING doomed d
                WHERE x.workflow_type = d.workflow_type AND x.workflow_id = d.workflow_id RETURNING 1
              )
              SELECT (SELECT count(*) FROM i) AS instances, (SELECT count(*) FROM e) AS events,
                (SELECT count(*) FROM ob) AS observations`
            instances += num(batch.instances)
            events += num(batch.events)
            observations += num(batch.observations)
            if (num(batch.instances) < batchSize) break
          }
          return { dryRun, cutoff, outbox, timers, instances, events, observations }
        }).pipe(Effect.mapError(storeError("prune"))),
      queueStats: Effect.gen(function*() {
        const at = new Date(yield* Clock.currentTimeMillis)
        const rows = yield* sql<Record<string, unknown>>`
          SELECT 'effect' AS kind, workflow_type,
            count(*) FILTER (WHERE dead_lettered_at IS NULL) AS pending,
            count(*) FILTER (WHERE dead_lettered_at IS NULL AND (locked_until IS NULL OR locked_until <= ${at})
              AND locked_by IS NULL) AS ready,
            count(*) FILTER (WHERE dead_lettered_at IS NULL AND locked_by IS NOT NULL AND locked_until <= ${at}) AS expired,
            count(*) FILTER (WHERE dead_lettered_at IS NOT NULL) AS dead
          FROM ironflow.outbox WHERE processed_at IS NULL GROUP BY workflow_type
          UNION ALL
          SELECT 'timer' AS kind, workflow_type,
            count(*) FILTER (WHERE dead_lettered_at IS NULL) AS pending,
            count(*) FILTER (WHERE dead_lettered_at IS NULL AND fire_at <= ${at}
              AND (locked_until IS NULL OR locked_until <= ${at}) AND locked_by IS NULL) AS ready,
            count(*) FILTER (WHERE dead_lettered_at IS NULL AND locked_by IS NOT NULL AND locked_until <= ${at}) AS expired,
            count(*) FILTER (WHERE dead_lettered_at IS NOT NULL) AS dead
          FROM ironflow.timers WHERE processed_at IS NULL GROUP BY workflow_type
          ORDER BY workflow_type, kind`
        return rows.map((row): WorkflowStore.QueueStats => ({
          kind: row.kind === "timer" ? "timer" : "effect",
          workflowType: String(row.workflow_type),
          pending: num(row.pending),
          ready: num(row.ready),
          expiredLeases: num(row.expired),
          deadLetters: num(row.dead)
        }))
      }).pipe(Effect.mapError(storeError("read queue statistics"))),
      announceWorker: (worker, ttl) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const at = new Date(now)
          const expires = new Date(now + Duration.toMillis(ttl))
          yield* sql`
            INSERT INTO ironflow.workers (worker_id, workflow_types, host, pid, started_at, heartbeat_at, expires_at)
            VALUES (${worker.workerId}, ${worker.workflowTypes}::text[], ${worker.host}, ${worker.pid}, ${at}, ${at}, ${expires})
            ON CONFLICT (worker_id) DO UPDATE SET workflow_types = EXCLUDED.workflow_types, host = EXCLUDED.host,
              pid = EXCLUDED.pid, heartbeat_at = EXCLUDED.heartbeat_at, expires_at = EXCLUDED.expires_at`
        }).pipe(Effect.mapError(storeError("announce a worker"))),
      retireWorker: (workerId) =>
        sql`DELETE FROM ironflow.workers WHERE worker_id = ${workerId}`.pipe(
          Effect.asVoid,
          Effect.mapError(storeError("retire a worker"))
        ),
      liveWorkers: Effect.gen(function*() {
        const at = new Date(yield* Clock.currentTimeMillis)
        const rows = yield* sql<Record<string, unknown>>`
          SELECT worker_id, workflow_types, host, pid, started_at, heartbeat_at, expires_at
          FROM ironflow.workers WHERE expires_at > ${at} ORDER BY started_at`
        return rows.map((row): WorkflowStore.WorkerInfo => ({
          workerId: String(row.worker_id),
          workflowTypes: parseTextArray(row.workflow_types),
          host: String(row.host),
          pid: num(row.pid),
          startedAt: date(row.started_at),
          heartbeatAt: date(row.heartbeat_at),
          expiresAt: date(row.expires_at)
        }))
      }).pipe(Effect.mapError(storeError("list live workers"))),
      wakeups
    }
    return store
  })

const isSqlError = (u: unknown): u is SqlError =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "SqlError"

/**
 * The store over the `SqlClient` in context, migrations applied at start.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<WorkflowStore.WorkflowStore, StoreError, SqlClient.SqlClient> = Layer.scoped(
  WorkflowStore.WorkflowStore,
  make()
)

/**
 * The store with options.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (
  options: Options
): Layer.Layer<WorkflowStore.WorkflowStore, StoreError, SqlClient.SqlClient> =>
  Layer.scoped(WorkflowStore.WorkflowStore, make(options))
