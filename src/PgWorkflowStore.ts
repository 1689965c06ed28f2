/**
 * `WorkflowStore` on PostgreSQL through `@effect/sql` (`SqlClient`): real
 * PostgreSQL with `@effect/sql-pg`, or the embedded database with
 * `PgliteClient`. The layer applies the migrations when it starts.
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Instances from "./internal/pg/instances.js"
import * as Operations from "./internal/pg/operations.js"
import * as Projections from "./internal/pg/projections.js"
import * as Queues from "./internal/pg/queues.js"
import {
  date,
  isSqlError,
  isUniqueKeyViolation,
  json,
  num,
  storeError,
  toStoredEvent,
  toSummary
} from "./internal/pg/rows.js"
import * as PgListener from "./internal/pgListener.js"
import * as RealTime from "./internal/realTime.js"
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

class RollbackSignal<A> {
  constructor(readonly value: A) {}
}

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
        // Untraced: a NOTIFY serves many commits, and would be a root trace of its own each time.
        RealTime.untraced,
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
          // lock_instance returns a snapshot only when it was written under the requested version.
          const snapshot: Option.Option<WorkflowStore.Snapshot> =
            row.out_snapshot_sequence === null || instance.snapshotVersion === undefined
              ? Option.none()
              : Option.some({
                sequence: num(row.out_snapshot_sequence),
                state: json(row.out_snapshot_data),
                version: instance.snapshotVersion
              })
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

    const store: WorkflowStore.WorkflowStore["Type"] = {
      withInstance,
      transactGroup: Instances.makeTransactGroup(sql, (committed) =>
        Effect.gen(function*() {
          if (committed.events) yield* wakeups.events.notify
          if (committed.effects || committed.requeued === "effect") {
            yield* wakeups.effects.notify
            yield* notifyEffectsRemote
          }
          if (committed.timers || committed.requeued === "timer") {
            yield* wakeups.timers.notify
            yield* notifyTimersRemote
          }
        })),
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
      listInstances: ({ idPrefix, limit, offset, status, workflowType }) =>
        sql<Record<string, unknown>>`
          SELECT workflow_type, workflow_id, created_at, event_count, last_event_at, completed_at
          FROM ironflow.workflow_instances
          WHERE (${workflowType ?? null}::text IS NULL OR workflow_type = ${workflowType ?? null}::text)
            AND (${idPrefix ?? null}::text IS NULL OR starts_with(workflow_id, ${idPrefix ?? null}::text))
            AND (${status ?? null}::text IS NULL
              OR (${status ?? null}::text = 'active') = (completed_at IS NULL))
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
      ...Queues.make(sql, {
        effects: Effect.zipRight(wakeups.effects.notify, notifyEffectsRemote),
        timers: Effect.zipRight(wakeups.timers.notify, notifyTimersRemote)
      }),
      ...Projections.make(sql),
      ...Operations.make(sql),
      wakeups
    }
    return store
  })

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
