/**
 * The embedded database: a `SqlClient` over PGlite (PostgreSQL compiled to
 * WebAssembly, running in this process, data in a directory or in memory).
 *
 * The same `PgWorkflowStore` runs on it unchanged. PGlite is a single session,
 * so this client admits one statement or one transaction at a time: a
 * transaction holds the session until it commits or rolls back, and other
 * fibers wait for it.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { makeCompiler } from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import { PGlite } from "@electric-sql/pglite"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

/**
 * @since 0.1.0
 * @category models
 */
export interface PgliteClient extends SqlClient.SqlClient {
  readonly pglite: PGlite
  /** Notifications sent with `NOTIFY` / `pg_notify` inside this database. */
  readonly listen: (channel: string) => Stream.Stream<string, SqlError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export const PgliteClient = Context.GenericTag<PgliteClient>("ironflow/PgliteClient")

/**
 * @since 0.1.0
 * @category models
 */
export interface PgliteClientConfig {
  /** A directory for the data; in memory when absent. */
  readonly dataDir?: string | undefined
  /** Skip the flush to disk after each statement (faster, loses the last writes on a crash). */
  readonly relaxedDurability?: boolean | undefined
}

const sqlError = (message: string) => (cause: unknown) => new SqlError({ cause, message })

/**
 * Opens (or creates) the database and closes it when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  config: PgliteClientConfig = {}
): Effect.Effect<PgliteClient, SqlError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function*() {
    const db = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          PGlite.create({
            ...(config.dataDir !== undefined ? { dataDir: config.dataDir } : {}),
            ...(config.relaxedDurability !== undefined ? { relaxedDurability: config.relaxedDurability } : {})
          }),
        catch: sqlError(
          `PgliteClient: failed to open the embedded database${config.dataDir ? ` in ${config.dataDir}` : ""}`
        )
      }),
      (db) => Effect.promise(() => db.close()).pipe(Effect.timeoutOption(5000), Effect.ignore)
    )

    // One session: a statement outside a transaction, or a whole transaction, holds it.
    const session = yield* Effect.makeSemaphore(1)

    const run = (sql: string, params: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<any>, SqlError> =>
      Effect.tryPromise({
        try: async () => {
          if (params.length === 0) {
            const results = await db.exec(sql)
            return results.length === 1 ? results[0].rows : results.map((r) => r.rows)
          }
          return (await db.query(sql, params as Array<unknown>)).rows
        },
        catch: sqlError("Failed to execute statement")
      })

    const connection: SqlConnection.Connection = {
      execute: (sql, params, transformRows) =>
        transformRows ? Effect.map(run(sql, params), transformRows) : run(sql, params),
      executeRaw: (sql, params) =>
        Effect.tryPromise({
          try: () => db.query(sql, params as Array<unknown>),
          catch: sqlError("Failed to execute statement")
        }),
      executeValues: (sql, params) =>
        Effect.tryPromise({
          try: async () => (await db.query<Array<unknown>>(sql, params as Array<unknown>, { rowMode: "array" })).rows,
          catch: sqlError("Failed to execute statement")
        }),
      executeUnprepared: (sql, params, transformRows) =>
        transformRows ? Effect.map(run(sql, params), transformRows) : run(sql, params),
      executeStream: (sql, params, transformRows) =>
        Stream.fromIterableEffect(transformRows ? Effect.map(run(sql, params), transformRows) : run(sql, params))
    }

    const acquirer: SqlConnection.Connection.Acquirer = Effect.as(
      Effect.acquireRelease(session.take(1), () => session.release(1)),
      connection
    )

    const client = yield* SqlClient.make({
      acquirer,
      compiler: makeCompiler(),
      spanAttributes: [["db.system.name", "postgresql"], ["db.namespace", config.dataDir ?? "memory"]]
    })

    return Object.assign(client, {
      pglite: db,
      listen: (channel: string) =>
        Stream.asyncPush<string, SqlError>((emit) =>
          Effect.acquireRelease(
            Effect.tryPromise({
              try: () => db.listen(channel, (payload) => emit.single(payload)),
              catch: sqlError("Failed to listen")
            }),
            (unlisten) => Effect.promise(() => unlisten()).pipe(Effect.ignore)
          )
        )
    }) as PgliteClient
  })

/**
 * Provides `SqlClient` (and `PgliteClient`) on an embedded database.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (config: PgliteClientConfig = {}): Layer.Layer<PgliteClient | SqlClient.SqlClient, SqlError> =>
  Layer.scopedContext(
    Effect.map(
      make(config),
      (client) => Context.make(PgliteClient, client).pipe(Context.add(SqlClient.SqlClient, client))
    )
  ).pipe(Layer.provide(Reactivity.layer))
