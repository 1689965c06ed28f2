/**
 * Chooses the database: PostgreSQL when a URL is given (`DATABASE_URL`),
 * otherwise the embedded database (PGlite) in a data directory
 * (`IRONFLOW_DATA_DIR`, default `.ironflow`).
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { resolve } from "node:path"
import * as PgliteClient from "./PgliteClient.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Options =
  | { readonly _tag: "Postgres"; readonly url: Redacted.Redacted; readonly maxConnections?: number | undefined }
  | {
    readonly _tag: "Embedded"
    readonly dataDir: string
    /** Create the directory and the database when missing (default true); else `DataDirectoryUnusable`. */
    readonly create?: boolean | undefined
  }

/**
 * `DATABASE_URL` (redacted) if set and not blank, else the embedded database
 * in `IRONFLOW_DATA_DIR` (default `.ironflow`). A blank value (`DATABASE_URL=`,
 * as shells and `.env` files leave it) counts as unset.
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
    Option.match(Option.filter(url, (u) => Redacted.value(u).trim() !== ""), {
      onNone: () => ({ _tag: "Embedded", dataDir }),
      onSome: (url) => ({ _tag: "Postgres", url, maxConnections: Option.getOrUndefined(maxConnections) })
    })
  )
)

/**
 * The `SqlClient` for the given options. The embedded database's directory is
 * opened at most once per machine: layers of one process for the same
 * directory share one open database (closed when the last is released), and
 * a directory open in another process fails with
 * `PgliteClient.DataDirectoryInUse`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<SqlClient.SqlClient, SqlError | PgliteClient.DataDirectoryError | PgliteClient.PgliteNotInstalled> =>
  options._tag === "Postgres"
    ? PgClient.layer({
      url: options.url,
      maxConnections: options.maxConnections ?? 10,
      applicationName: "ironflow"
    })
    : PgliteClient.layer({ dataDir: options.dataDir, create: options.create })

/**
 * The `SqlClient` chosen from the environment (see `config`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromEnv = (): Layer.Layer<
  SqlClient.SqlClient,
  SqlError | PgliteClient.DataDirectoryError | PgliteClient.PgliteNotInstalled | ConfigError.ConfigError
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
