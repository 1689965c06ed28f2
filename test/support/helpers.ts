/**
 * Helpers shared by the contract suites: unique workflow type names, building
 * a `WorkflowService` over the suite's store, units of work, raw SQL reads and
 * a full replay that does not go through the library.
 */
import { SqlClient } from "@effect/sql"
import { Duration, Effect, Option, Schema, TestServices } from "effect"
import type { Workflow } from "ironflow"
import { WorkflowRegistry, WorkflowService, WorkflowStore } from "ironflow"

let counter = 0

/**
 * A workflow type name no other test of this process uses: tests share one
 * database per suite, and claims, dead letters and lists filter by type.
 */
export const uniqueType = (prefix = "test_workflow"): string => `${prefix}_${++counter}`

/**
 * A `WorkflowService` over the suite's `WorkflowStore` that knows exactly
 * these registrations, with the given service configuration.
 */
export const makeService = <const Registrations extends ReadonlyArray<Workflow.Registration>>(
  registrations: Registrations,
  config: Partial<WorkflowService.ServiceConfig> = {}
) =>
  Effect.gen(function*() {
    const registry = yield* WorkflowRegistry.make(registrations)
    return yield* WorkflowService.make.pipe(
      Effect.provideService(WorkflowRegistry.WorkflowRegistry, registry),
      Effect.provide(WorkflowService.layerWith(config))
    )
  })

/** Everything a unit of work can write, empty unless given. */
export const writes = (partial: Partial<WorkflowStore.Writes> = {}): WorkflowStore.Writes => ({
  events: [],
  effects: [],
  cancelTimers: [],
  timers: [],
  completed: false,
  observation: Option.none(),
  snapshot: Option.none(),
  ...partial
})

/** A timer request carrying an already encoded input. */
export const timer = (
  delay: Duration.DurationInput,
  input: unknown,
  key?: string
): WorkflowStore.TimerRequest => ({
  delay: Duration.decode(delay),
  input,
  key: Option.fromNullable(key)
})

/** Commits `partial` on an instance in one unit of work and returns the store's result. */
export const commit = (
  instance: { readonly workflowType: string; readonly workflowId: string; readonly uniqueKey?: string },
  partial: Partial<WorkflowStore.Writes> = {}
) =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore.WorkflowStore
    return yield* store.withInstance(
      {
        workflowType: instance.workflowType,
        workflowId: instance.workflowId,
        uniqueKey: Option.fromNullable(instance.uniqueKey)
      },
      () => Effect.succeed(WorkflowStore.UnitOfWork.Commit({ writes: writes(partial), value: undefined }))
    )
  })

/** Waits on the real clock (the suites run under the TestClock). */
export const liveSleep = (duration: Duration.DurationInput) => TestServices.provideLive(Effect.sleep(duration))

/** Epoch milliseconds of a timestamp column value (driver dependent: Date or string). */
export const millis = (u: unknown): number => (u instanceof Date ? u.getTime() : new Date(String(u)).getTime())

/** The rows of an outbox or timers table for one workflow type, oldest first (JSON read as text and parsed here). */
export const queueRows = (table: "outbox" | "timers", workflowType: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = table === "outbox"
      ? yield* sql<Record<string, unknown>>`
          SELECT id::text AS id, workflow_id, payload::text AS payload, attempts, last_error, locked_by, locked_until,
            created_at, processed_at, dead_lettered_at, NULL AS key, NULL AS fire_at
          FROM ironflow.outbox WHERE workflow_type = ${workflowType} ORDER BY created_at, id`
      : yield* sql<Record<string, unknown>>`
          SELECT id::text AS id, workflow_id, input::text AS payload, attempts, last_error, locked_by, locked_until,
            created_at, processed_at, dead_lettered_at, key, fire_at
          FROM ironflow.timers WHERE workflow_type = ${workflowType} ORDER BY created_at, id`
    return rows.map((row) => ({
      id: String(row.id),
      workflowId: String(row.workflow_id),
      payload: JSON.parse(String(row.payload)) as unknown,
      attempts: Number(row.attempts),
      lastError: row.last_error === null ? null : String(row.last_error),
      lockedBy: row.locked_by === null ? null : String(row.locked_by),
      lockedUntil: row.locked_until === null ? null : millis(row.locked_until),
      createdAt: millis(row.created_at),
      processedAt: row.processed_at === null ? null : millis(row.processed_at),
      deadLetteredAt: row.dead_lettered_at === null ? null : millis(row.dead_lettered_at),
      key: row.key === null ? null : String(row.key),
      fireAt: row.fire_at === null ? null : millis(row.fire_at)
    }))
  })

/** The instance row of `(type, id)`, if any. */
export const instanceRow = (workflowType: string, workflowId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<Record<string, unknown>>`
      SELECT event_count, last_event_at, completed_at, unique_key, snapshot_sequence, snapshot_data::text AS snapshot_data,
        snapshot_version
      FROM ironflow.workflow_instances
      WHERE workflow_type = ${workflowType} AND workflow_id = ${workflowId}`
    if (rows.length === 0) return Option.none()
    const row = rows[0]
    return Option.some({
      eventCount: Number(row.event_count),
      lastEventAt: row.last_event_at === null ? null : millis(row.last_event_at),
      completedAt: row.completed_at === null ? null : millis(row.completed_at),
      uniqueKey: row.unique_key === null ? null : String(row.unique_key),
      snapshotSequence: row.snapshot_sequence === null ? null : Number(row.snapshot_sequence),
      snapshotData: row.snapshot_data === null ? null : JSON.parse(String(row.snapshot_data)) as unknown,
      snapshotVersion: row.snapshot_version === null ? null : String(row.snapshot_version)
    })
  })

/** Inserts events directly (as a corrupted or legacy history would be), without an instance row. */
export const insertRawEvents = (
  workflowType: string,
  workflowId: string,
  payloads: ReadonlyArray<unknown>
) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    for (const [index, payload] of payloads.entries()) {
      yield* sql`
        INSERT INTO ironflow.events (workflow_type, workflow_id, sequence, payload)
        VALUES (${workflowType}, ${workflowId}, ${index + 1}, ${JSON.stringify(payload)}::jsonb)`
    }
  })

/** The number of events of one instance, read with SQL. */
export const countEvents = (workflowType: string, workflowId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ count: unknown }>`
      SELECT count(*) AS count FROM ironflow.events
      WHERE workflow_type = ${workflowType} AND workflow_id = ${workflowId}`
    return Number(rows[0].count)
  })

/** The `"type"` field of each stored payload. */
export const typesOf = (payloads: ReadonlyArray<{ readonly payload: unknown }>): ReadonlyArray<unknown> =>
  payloads.map((event) => (event.payload as { type?: unknown }).type)

/**
 * The state of an instance rebuilt from all its stored events, decoded with
 * the workflow's event Schema (stored `{"type": V}` read as `{_tag: V}`),
 * independently of the library's replay and snapshots.
 */
export const fullReplay = <S, I, E, F, R>(
  workflow: Workflow.Workflow<S, I, E, F, R>,
  events: ReadonlyArray<WorkflowStore.StoredEvent>
): S => {
  const decode = Schema.decodeUnknownSync(workflow.event as Schema.Schema<E, unknown>)
  return events.reduce((state, stored) => {
    const { type, ...rest } = stored.payload as Record<string, unknown>
    return workflow.evolve(state, decode({ _tag: type, ...rest }))
  }, workflow.initialState)
}
