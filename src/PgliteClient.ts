/**
 * The embedded database: a `SqlClient` over PGlite (PostgreSQL compiled to
 * WebAssembly, running in this process, data in a directory or in memory).
 *
 * The same `PgWorkflowStore` runs on it unchanged. PGlite is a single session,
 * so this client admits one statement or one transaction at a time: a
 * transaction holds the session until it commits or rolls back, and other
 * fibers wait for it.
 *
 * A data directory is opened at most once per machine. Inside a process,
 * every client for one directory (after resolving symbolic links) shares one
 * open database: the first opens it, the last to be released closes it (the
 * first opener's options apply). Another process is refused with
 * `DataDirectoryInUse`, naming its pid; a lock left by a process that is gone
 * (or whose pid now belongs to another process) is taken over.
 *
 * `@electric-sql/pglite` is an optional peer dependency of ironflow: it is
 * loaded when a client is made, and a missing package fails with
 * {@link PgliteNotInstalled}. Applications that only use PostgreSQL need not
 * install it.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { makeCompiler } from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import type { PGlite } from "@electric-sql/pglite"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { existsSync, mkdirSync, realpathSync, statSync } from "node:fs"
import { hostname } from "node:os"
import { dirname, join, resolve } from "node:path"
import * as DataDirectory from "./internal/dataDirectory.js"

/**
 * The PGlite database behind a {@link PgliteClient}, typed structurally so that
 * ironflow's declarations never require PGlite's own (which need the DOM and
 * WebAssembly libraries). Cast it to `PGlite` from `@electric-sql/pglite` for
 * the rest of its API.
 *
 * @since 0.1.0
 * @category models
 */
export interface PgliteDatabase {
  readonly query: <T = Record<string, unknown>>(
    sql: string,
    params?: Array<unknown>
  ) => Promise<{ readonly rows: Array<T> }>
  readonly exec: (sql: string) => Promise<Array<{ readonly rows: Array<Record<string, unknown>> }>>
  readonly listen: (channel: string, callback: (payload: string) => void) => Promise<() => Promise<void>>
  readonly close: () => Promise<void>
  readonly closed: boolean
}

/**
 * `@electric-sql/pglite`, the embedded database, is not installed: it is an
 * optional peer dependency of ironflow. Install it
 * (`npm install @electric-sql/pglite@^0.5.17`) or use PostgreSQL.
 *
 * @since 0.1.0
 * @category errors
 */
export class PgliteNotInstalled extends Schema.TaggedError<PgliteNotInstalled>("ironflow/PgliteNotInstalled")(
  "PgliteNotInstalled",
  { cause: Schema.Defect }
) {
  override get message(): string {
    return "the embedded database needs the package @electric-sql/pglite, an optional peer dependency of ironflow: " +
      "install it (npm install @electric-sql/pglite@^0.5.17) or use PostgreSQL (DATABASE_URL)"
  }
}

const isModuleNotFound = (error: unknown): boolean =>
  typeof error === "object" && error !== null &&
  ((error as { code?: unknown }).code === "ERR_MODULE_NOT_FOUND" ||
    (error as { code?: unknown }).code === "MODULE_NOT_FOUND") &&
  String((error as { message?: unknown }).message).includes("@electric-sql/pglite")

// Loaded on first use: `@electric-sql/pglite` is an optional peer dependency.
const loadPglite: Effect.Effect<typeof PGlite, PgliteNotInstalled | SqlError> = Effect.tryPromise({
  try: () => import("@electric-sql/pglite").then((module) => module.PGlite),
  catch: (cause) =>
    isModuleNotFound(cause)
      ? new PgliteNotInstalled({ cause })
      : new SqlError({ cause, message: "PgliteClient: failed to load @electric-sql/pglite" })
})

/**
 * @since 0.1.0
 * @category models
 */
export interface PgliteClient extends SqlClient.SqlClient {
  /** The PGlite database (see {@link PgliteDatabase}). */
  readonly pglite: PgliteDatabase
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
  /**
   * Create the directory and a new database in it when missing (default
   * true). When false, a missing directory, or one that holds no database,
   * fails with `DataDirectoryUnusable` instead.
   */
  readonly create?: boolean | undefined
  /**
   * PostgreSQL settings (`name: value`, as in `postgresql.conf`) passed at start, over
   * {@link defaultSettings}; `null` removes a default.
   */
  readonly settings?: Readonly<Record<string, string | number | null>> | undefined
}

/**
 * The PostgreSQL settings the embedded database starts with (see the README's
 * "Embedded database" section for what they save).
 *
 * @since 0.1.0
 * @category configuration
 */
export const defaultSettings: Readonly<Record<string, string | number>> = {
  // PGlite's default is 128 MB (plus what it grows into): PostgreSQL's buffer pool lives in the
  // WebAssembly heap, which never shrinks. A smaller pool costs little here, since the pages it
  // drops stay in the in-memory file system or the OS page cache. Durability is not affected.
  shared_buffers: "16MB"
}

/**
 * The data directory is open in another process (or on another host sharing
 * it): PGlite serves one process, and a second one would corrupt the data.
 *
 * @since 0.1.0
 * @category errors
 */
export class DataDirectoryInUse extends Schema.TaggedError<DataDirectoryInUse>("ironflow/DataDirectoryInUse")(
  "DataDirectoryInUse",
  {
    dataDir: Schema.String,
    lockFile: Schema.String,
    pid: Schema.Number,
    host: Schema.String,
    since: Schema.String
  }
) {
  override get message(): string {
    return `the embedded database in ${this.dataDir} is in use by process ${this.pid}${
      this.host === currentHost() ? "" : ` on host ${this.host}`
    } (since ${this.since}); stop it first, or set DATABASE_URL`
  }
}

/**
 * The data directory cannot hold a database: it is a file, or (with
 * `create: false`) it does not exist or holds no database.
 *
 * @since 0.1.0
 * @category errors
 */
export class DataDirectoryUnusable extends Schema.TaggedError<DataDirectoryUnusable>("ironflow/DataDirectoryUnusable")(
  "DataDirectoryUnusable",
  {
    dataDir: Schema.String,
    reason: Schema.Literal("NotADirectory", "Missing", "NoDatabase", "Inaccessible"),
    detail: Schema.optional(Schema.String)
  }
) {
  override get message(): string {
    switch (this.reason) {
      case "NotADirectory":
        return `the embedded database directory ${this.dataDir} is a file, not a directory`
      case "Missing":
        return `the embedded database directory ${this.dataDir} does not exist`
      case "NoDatabase":
        return `the directory ${this.dataDir} holds no embedded database`
      case "Inaccessible":
        return `the embedded database directory ${this.dataDir} cannot be used: ${this.detail ?? "unknown error"}`
    }
  }
}

/**
 * @since 0.1.0
 * @category errors
 */
export type DataDirectoryError = DataDirectoryInUse | DataDirectoryUnusable

const currentHost = () => hostname()

/** PGlite's file system errors carry an errno and no message: name it rather than print `[object Object]`. */
const describeCause = (cause: unknown): string | undefined => {
  if (cause instanceof Error && cause.message) return undefined // printed with the cause
  if (typeof cause === "object" && cause !== null) {
    const { errno, message, name } = cause as { errno?: unknown; message?: unknown; name?: unknown }
    if (typeof message === "string" && message) return undefined
    if (errno !== undefined) return `${typeof name === "string" ? name : "file system error"} (errno ${String(errno)})`
  }
  return undefined
}

const sqlError = (message: string) => (cause: unknown) => {
  const detail = describeCause(cause)
  return new SqlError({ cause, message: detail === undefined ? message : `${message}: ${detail}` })
}

/**
 * Opens (or creates) the database and closes it when the scope closes. A
 * data directory already open in this process is shared (see the module
 * documentation).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  config: PgliteClientConfig = {}
): Effect.Effect<
  PgliteClient,
  SqlError | DataDirectoryError | PgliteNotInstalled,
  Scope.Scope | Reactivity.Reactivity
> => config.dataDir === undefined ? open(config) : shared(config.dataDir, config)

interface Shared {
  refs: number
  readonly client: PgliteClient
  readonly close: Effect.Effect<void>
}

/** Open data directories of this process (on `globalThis`, so that two copies of this module share them). */
const registry: { readonly lock: Effect.Semaphore; readonly open: Map<string, Shared> } =
  ((globalThis as any)[Symbol.for("ironflow/PgliteClient/dataDirectories")] ??= {
    lock: Effect.unsafeMakeSemaphore(1),
    open: new Map<string, Shared>()
  })

/** Checks the directory and returns its canonical path (symbolic links resolved). */
const prepare = (dataDir: string, create: boolean): Effect.Effect<string, DataDirectoryUnusable> =>
  Effect.try({
    try: () => {
      const path = resolve(dataDir)
      const stat = statSync(path, { throwIfNoEntry: false })
      if (stat !== undefined && !stat.isDirectory()) {
        return new DataDirectoryUnusable({ dataDir: path, reason: "NotADirectory" })
      }
      if (!create) {
        if (stat === undefined) return new DataDirectoryUnusable({ dataDir: path, reason: "Missing" })
        if (!existsSync(join(path, "PG_VERSION"))) {
          return new DataDirectoryUnusable({ dataDir: path, reason: "NoDatabase" })
        }
      }
      mkdirSync(path, { recursive: true })
      return realpathSync(path)
    },
    catch: (cause) =>
      new DataDirectoryUnusable({
        dataDir: resolve(dataDir),
        reason: "Inaccessible",
        detail: cause instanceof Error ? cause.message : String(cause)
      })
  }).pipe(Effect.flatMap((r) => typeof r === "string" ? Effect.succeed(r) : Effect.fail(r)))

const shared = (
  dataDir: string,
  config: PgliteClientConfig
): Effect.Effect<PgliteClient, SqlError | DataDirectoryError | PgliteNotInstalled, Scope.Scope> =>
  Effect.acquireRelease(
    registry.lock.withPermits(1)(Effect.gen(function*() {
      const path = yield* prepare(dataDir, config.create ?? true)
      const existing = registry.open.get(path)
      if (existing !== undefined) {
        existing.refs++
        return [path, existing.client] as const
      }
      const scope = yield* Scope.make()
      const opened = yield* Effect.gen(function*() {
        const lockFile = `${path}.lock`
        const taken = yield* Effect.try({
          try: () => {
            mkdirSync(dirname(lockFile), { recursive: true })
            return DataDirectory.acquire(lockFile)
          },
          catch: (cause) =>
            new DataDirectoryUnusable({
              dataDir: path,
              reason: "Inaccessible",
              detail: `cannot lock it: ${cause instanceof Error ? cause.message : String(cause)}`
            })
        })
        if (taken._tag === "Held") {
          return yield* new DataDirectoryInUse({
            dataDir: path,
            lockFile,
            pid: taken.holder.pid,
            host: taken.holder.host,
            since: taken.holder.since
          })
        }
        // Added first, so it runs last: after the database is closed.
        yield* Scope.addFinalizer(scope, Effect.sync(() => DataDirectory.release(lockFile, taken.token)))
        return yield* open({ ...config, dataDir: path }).pipe(Effect.provide(Reactivity.layer), Scope.extend(scope))
      }).pipe(Effect.onExit((exit) => Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void))
      registry.open.set(path, { refs: 1, client: opened, close: Scope.close(scope, Exit.void) })
      return [path, opened] as const
    })),
    ([path]) =>
      registry.lock.withPermits(1)(Effect.suspend(() => {
        const entry = registry.open.get(path)
        if (entry === undefined || --entry.refs > 0) return Effect.void
        registry.open.delete(path)
        return entry.close
      }))
  ).pipe(Effect.map(([, client]) => client))

const open = (
  config: PgliteClientConfig
): Effect.Effect<PgliteClient, SqlError | PgliteNotInstalled, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function*() {
    const PGlite = yield* loadPglite
    const db = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          PGlite.create({
            ...(config.dataDir !== undefined ? { dataDir: config.dataDir } : {}),
            ...(config.relaxedDurability !== undefined ? { relaxedDurability: config.relaxedDurability } : {}),
            startParams: [
              ...PGlite.defaultStartParams,
              ...Object.entries({ ...defaultSettings, ...config.settings }).flatMap(([name, value]) =>
                value === null ? [] : ["-c", `${name}=${value}`]
              )
            ]
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

    const database: PgliteDatabase = db
    return Object.assign(client, {
      pglite: database,
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
export const layer = (
  config: PgliteClientConfig = {}
): Layer.Layer<PgliteClient | SqlClient.SqlClient, SqlError | DataDirectoryError | PgliteNotInstalled> =>
  Layer.scopedContext(
    Effect.map(
      make(config),
      (client) => Context.make(PgliteClient, client).pipe(Context.add(SqlClient.SqlClient, client))
    )
  ).pipe(Layer.provide(Reactivity.layer))
