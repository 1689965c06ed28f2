import * as Reactivity from "@effect/experimental/Reactivity"
import type { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Config, Effect, Layer, Redacted } from "effect"
import { PgliteClient } from "ironflow"
import { randomUUID } from "node:crypto"

/**
 * Where the PostgreSQL tests connect: `TEST_DATABASE_URL`, `DATABASE_URL`, or
 * the CI default. Tests never skip when it is unreachable: the layer fails.
 */
export const adminUrl = Config.redacted("TEST_DATABASE_URL").pipe(
  Config.orElse(() => Config.redacted("DATABASE_URL")),
  Config.withDefault(Redacted.make("postgres://postgres@127.0.0.1:5432/test"))
)

const withDatabase = (url: Redacted.Redacted, database: string): Redacted.Redacted => {
  const parsed = new URL(Redacted.value(url))
  parsed.pathname = `/${database}`
  return Redacted.make(parsed.toString())
}

/**
 * A fresh PostgreSQL database for one suite, dropped when the suite's scope
 * closes: suites run in parallel and leave nothing behind.
 */
export const layerPostgres = (
  options: { readonly maxConnections?: number } = {}
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, unknown> =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      const url = yield* adminUrl
      const name = `ironflow_test_${randomUUID().replace(/-/g, "").slice(0, 20)}`
      const admin = yield* PgClient.make({ url, maxConnections: 1 })
      yield* admin`CREATE DATABASE ${admin(name)}`
      yield* Effect.addFinalizer(() =>
        admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`.pipe(
          Effect.tapErrorCause((cause) => Effect.logWarning(`could not drop ${name}`, cause)),
          Effect.ignore
        )
      )
      return PgClient.layer({ url: withDatabase(url, name), maxConnections: options.maxConnections ?? 10 })
    }).pipe(Effect.provide(Reactivity.layer))
  )

/** A fresh in-memory embedded database for one suite. */
export const layerPglite = (): Layer.Layer<PgliteClient.PgliteClient | SqlClient.SqlClient, unknown> =>
  PgliteClient.layer()

/** Both backends, for contract suites. */
export const backends = [
  ["postgres", layerPostgres] as const,
  ["pglite", layerPglite] as const
] as const
