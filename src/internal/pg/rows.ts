import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Option from "effect/Option"
import { StoreError } from "../../WorkflowError.js"
import type * as WorkflowStore from "../../WorkflowStore.js"

// Conversions between PostgreSQL rows and the store's records, and error mapping.

const UNIQUE_KEY_INDEX = "idx_workflow_instances_active_unique_key"

export const isUuid = (u: string) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(u)

export const num = (u: unknown): number => (typeof u === "number" ? u : Number(u))
export const date = (u: unknown): Date => (u instanceof Date ? u : new Date(String(u)))
export const optionalDate = (
  u: unknown
): Option.Option<Date> => (u === null || u === undefined ? Option.none() : Option.some(date(u)))
export const optionalString = (
  u: unknown
): Option.Option<string> => (u === null || u === undefined ? Option.none() : Option.some(String(u)))
// Both drivers return jsonb columns already parsed (a JSON string arrives as a JS string).
export const json = (u: unknown): unknown => u

export const parseTextArray = (u: unknown): ReadonlyArray<string> => {
  if (Array.isArray(u)) return u.map(String)
  // Drivers without array parsing return the literal form, e.g. {a,"b c"}.
  const text = String(u ?? "")
  if (text === "{}" || text === "") return []
  return text.slice(1, -1).split(",").map((item) => item.replace(/^"(.*)"$/, "$1"))
}

export const isUniqueKeyViolation = (error: SqlError): boolean => {
  const cause = error.cause as { code?: unknown; constraint?: unknown; message?: unknown } | undefined
  return cause?.code === "23505" &&
    (cause.constraint === UNIQUE_KEY_INDEX || String(cause.message ?? "").includes(UNIQUE_KEY_INDEX))
}

export const storeError = (operation: string) => (cause: unknown) =>
  cause instanceof StoreError ? cause : new StoreError({ operation, cause })

export const isSqlError = (u: unknown): u is SqlError =>
  typeof u === "object" && u !== null && (u as { _tag?: unknown })._tag === "SqlError"

/** @internal */
export const toStoredEvent = (row: Record<string, unknown>): WorkflowStore.StoredEvent => ({
  globalSequence: num(row.global_sequence),
  workflowType: String(row.workflow_type),
  workflowId: String(row.workflow_id),
  sequence: num(row.sequence),
  payload: json(row.payload),
  version: num(row.event_version ?? 1),
  createdAt: date(row.created_at)
})

/** @internal */
export const toSummary = (row: Record<string, unknown>): WorkflowStore.WorkflowInstanceSummary => ({
  workflowType: String(row.workflow_type),
  workflowId: String(row.workflow_id),
  createdAt: date(row.created_at),
  eventCount: num(row.event_count),
  lastEventAt: optionalDate(row.last_event_at),
  completedAt: optionalDate(row.completed_at)
})

/** The table of a queue (a constant identifier, never input). @internal */
export const queueTable = (sql: SqlClient.SqlClient, kind: WorkflowStore.QueueKind) =>
  kind === "effect" ? sql("ironflow.outbox") : sql("ironflow.timers")
