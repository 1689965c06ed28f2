import type * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { StoreError } from "../../WorkflowError.js"
import type * as WorkflowStore from "../../WorkflowStore.js"
import { date, isSqlError, num, storeError, toStoredEvent } from "./rows.js"

// First key of the projections' advisory locks: "iron" in ASCII.
const PROJECTION_LOCK_SPACE = 0x69726f6e

/**
 * Projection checkpoints and reads in commit order.
 *
 * @internal
 */
export const make = (
  sql: SqlClient.SqlClient
): Pick<
  WorkflowStore.WorkflowStore["Type"],
  | "fetchEventsSince"
  | "loadProjectionPosition"
  | "storeProjectionPosition"
  | "projectionTick"
  | "resetProjection"
  | "projectionPositions"
  | "forgetProjection"
> => ({
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
      Effect.mapError((e) => isSqlError(e) ? new StoreError({ operation: `reset projection ${name}`, cause: e }) : e)
    ),
  forgetProjection: (name) =>
    Effect.gen(function*() {
      yield* sql`SELECT pg_advisory_xact_lock(${PROJECTION_LOCK_SPACE}, hashtext(${name}))`
      const gone = yield* sql`DELETE FROM ironflow.projection_positions WHERE projection_name = ${name}
        RETURNING projection_name`
      return gone.length > 0
    }).pipe(sql.withTransaction, Effect.mapError(storeError("forget a projection"))),
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
  )
})
