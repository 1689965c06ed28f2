/**
 * Chooses the database: PostgreSQL when a URL is given (`DATABASE_URL`),
 * otherwise the embedded database (PGlite) in a data directory
 * (`IRONFLOW_DATA_DIR`, default `.ironflow`).
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs"
import { dirname, resolve } from "node:path"
import * as PgliteClient from "./PgliteClient.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Options =
  | { readonly _tag: "Postgres"; readonly url: Redacted.Redacted; readonly maxConnections?: number | undefined }
  | { readonly _tag: "Embedded"; readonly dataDir: string }

/**
 * `DATABASE_URL` (redacted) if set, else the embedded database in
 * `IRONFLOW_DATA_DIR` (default `.ironflow`).
 *
 * @since 0.1.0
 * @category configuration
 */
export const config: Config.Config<Options> = Config.all({
  url: Config.option(Config.redacted("DATABASE_URL")),
  dataDir: Config.string("IRONFLOW_DATA_DIR").pipe(Config.withDefault(".ironflow")),
  maxConnections: Config.option(Config.integer("IRONFLOW_DATABASE_MAX_CONNECTIONS"))
}).pipe(
  Config.map(({ dataDir, maxConnections, url }): Options =>
    Option.match(url, {
      onNone: () => ({ _tag: "Embedded", dataDir }),
      onSome: (url) => ({ _tag: "Postgres", url, maxConnections: Option.getOrUndefined(maxConnections) })
    })
  )
)

/**
 * A lock file beside the data directory: PGlite must be opened by one process
 * at a time, and a second one would corrupt it.
 */
const lockDataDir = (dataDir: string) =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        const path = resolve(dataDir) + ".lock"
        mkdirSync(dirname(path), { recursive: true })
        for (let attempt = 0; attempt < 2; attempt++) {
          try {
            const fd = openSync(path, "wx")
            writeSync(fd, String(process.pid))
            closeSync(fd)
            return path
          } catch (error) {
            if ((error as { code?: string }).code !== "EEXIST") throw error
            const pid = Number(readFileSync(path, "utf8"))
            if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
              throw new Error(
                `the embedded database in ${dataDir} is in use by process ${pid}; stop it first, or set DATABASE_URL`
              )
            }
            rmSync(path, { force: true }) // left behind by a process that is gone
          }
        }
        throw new Error(`could not lock the embedded database in ${dataDir}`)
      },
      catch: (cause) => new SqlError({ cause, message: (cause as Error).message })
    }),
    (path) => Effect.sync(() => rmSync(path, { force: true }))
  )

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as { code?: string }).code === "EPERM"
  }
}

/**
 * The `SqlClient` for the given options.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<SqlClient.SqlClient, SqlError | PgliteClient.PgliteNotInstalled> =>
  options._tag === "Postgres"
    ? PgClient.layer({
      url: options.url,
      maxConnections: options.maxConnections ?? 10,
      applicationName: "ironflow"
    })
    : Layer.unwrapScoped(
      Effect.as(lockDataDir(options.dataDir), PgliteClient.layer({ dataDir: options.dataDir }))
    )

/**
 * The `SqlClient` chosen from the environment (see `config`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromEnv = (): Layer.Layer<
  SqlClient.SqlClient,
  SqlError | PgliteClient.PgliteNotInstalled | ConfigError.ConfigError
> => Layer.unwrapEffect(Effect.map(config, layer))

/**
 * Describes where the options point, without secrets.
 *
 * @since 0.1.0
 * @category utils
 */
export const describe = (options: Options): string => {
  if (options._tag === "Embedded") return `embedded PostgreSQL (PGlite) in ${resolve(options.dataDir)}`
  return "PostgreSQL at DATABASE_URL"
}
