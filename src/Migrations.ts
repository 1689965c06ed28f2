/**
 * Applies the SQL files of `migrations/` (schema `ironflow`, the tables of
 * ironflow 0.6.0 plus additive changes of our own).
 *
 * Several processes may start at once: the run takes a transaction-scoped
 * advisory lock, so one applies the missing migrations while the others wait
 * and then find nothing to do. Each migration is applied in the same
 * transaction as its bookkeeping row.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { createHash } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { StoreError } from "./WorkflowError.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Migration {
  readonly version: number
  readonly name: string
  readonly sql: string
  readonly checksum: string
}

const directory = fileURLToPath(new URL("../migrations/", import.meta.url))

/**
 * The migrations shipped with this version, in order.
 *
 * @since 0.1.0
 * @category constructors
 */
export const all: Effect.Effect<ReadonlyArray<Migration>, StoreError> = Effect.try({
  try: () =>
    readdirSync(directory)
      .filter((file) => /^\d+_.+\.sql$/.test(file))
      .map((file) => {
        const sql = readFileSync(directory + file, "utf8")
        return {
          version: Number(file.slice(0, file.indexOf("_"))),
          name: file.slice(file.indexOf("_") + 1, -4),
          sql,
          checksum: createHash("sha256").update(sql).digest("hex")
        }
      })
      .sort((a, b) => a.version - b.version),
  catch: (cause) => new StoreError({ operation: `reading migrations from ${directory}`, cause })
})

// Constant key for pg_advisory_xact_lock: "ironflow" in ASCII.
const lockKey = 0x69726f6e666c6f77n

/**
 * Applies every migration not applied yet and returns the ones it applied.
 *
 * @since 0.1.0
 * @category constructors
 */
export const run: Effect.Effect<ReadonlyArray<Migration>, StoreError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const migrations = yield* all
  return yield* Effect.gen(function*() {
    yield* sql`SELECT pg_advisory_xact_lock(${lockKey.toString()}::bigint)`
    yield* sql`CREATE SCHEMA IF NOT EXISTS ironflow`
    yield* sql`CREATE TABLE IF NOT EXISTS ironflow.schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`
    const applied = yield* sql<{ version: number; checksum: string }>`
      SELECT version, checksum FROM ironflow.schema_migrations`
    const known = new Map(applied.map((row) => [Number(row.version), row.checksum]))
    const pending = migrations.filter((m) => !known.has(m.version))
    const shipped = new Set(migrations.map((m) => m.version))
    const newer = Array.from(known.keys()).filter((v) => !shipped.has(v)).sort((a, b) => a - b)
    if (newer.length > 0) {
      yield* Effect.logWarning(
        `schema ironflow has migration(s) ${
          newer.join(", ")
        } that this build does not know: it is newer than this build`
      )
    }
    for (const m of migrations) {
      const checksum = known.get(m.version)
      if (checksum !== undefined && checksum !== m.checksum) {
        yield* Effect.logWarning(`migration ${m.version}_${m.name} changed after it was applied; it is not re-run`)
      }
    }
    for (const m of pending) {
      yield* sql.unsafe(m.sql)
      yield* sql`INSERT INTO ironflow.schema_migrations (version, name, checksum) VALUES (${m.version}, ${m.name}, ${m.checksum})`
      yield* Effect.logDebug(`applied migration ${m.version}_${m.name}`)
    }
    return pending
  }).pipe(
    sql.withTransaction,
    Effect.mapError((cause) => cause instanceof StoreError ? cause : new StoreError({ operation: "migrate", cause }))
  )
}).pipe(Effect.withSpan("ironflow.migrate"))

/**
 * Where the schema stands against this build.
 *
 * @since 0.1.0
 * @category models
 */
export interface Status {
  /** The highest migration applied to the database (0 when the schema is missing). */
  readonly applied: number
  /** The highest migration this build ships. */
  readonly shipped: number
  /** Migrations shipped and not applied yet. */
  readonly pending: ReadonlyArray<number>
  /** Migrations applied that this build does not know: the schema is newer than this build. */
  readonly unknown: ReadonlyArray<number>
}

/**
 * Compares the applied migrations with this build's, applying nothing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const status: Effect.Effect<Status, StoreError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const migrations = yield* all
  const [exists] = yield* sql<{ present: boolean }>`
    SELECT to_regclass('ironflow.schema_migrations') IS NOT NULL AS present`
  const applied = exists.present
    ? (yield* sql<{ version: number }>`SELECT version FROM ironflow.schema_migrations`).map((r) => Number(r.version))
    : []
  const appliedSet = new Set(applied)
  const shipped = new Set(migrations.map((m) => m.version))
  return {
    applied: Math.max(0, ...applied),
    shipped: Math.max(0, ...shipped),
    pending: migrations.map((m) => m.version).filter((v) => !appliedSet.has(v)),
    unknown: applied.filter((v) => !shipped.has(v)).sort((a, b) => a - b)
  }
}).pipe(
  Effect.mapError((cause) =>
    cause instanceof StoreError ? cause : new StoreError({ operation: "migration status", cause })
  )
)

/**
 * Runs the migrations when the layer is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never, StoreError, SqlClient.SqlClient> = Layer.effectDiscard(run)
