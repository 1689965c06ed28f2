/**
 * The two backends of the contract suites, from the test kit: a fresh
 * PostgreSQL database per suite (dropped at the end; the suite fails, never
 * skips, when PostgreSQL is unreachable) and a fresh in-memory PGlite.
 */
import type { SqlClient } from "@effect/sql"
import type { Layer } from "effect"
import { TestRuntime } from "ironflow"

export const layerPostgres = (): Layer.Layer<SqlClient.SqlClient, unknown> => TestRuntime.postgres()

export const layerPglite = (): Layer.Layer<SqlClient.SqlClient, unknown> => TestRuntime.embedded()

/**
 * A test that proves the suite runs where its label says: on "postgres", a
 * PostgreSQL server (not PGlite) where another connection sees what the
 * suite's store and client wrote; otherwise the embedded database.
 */
export const assertBackend = (label: string) =>
  TestRuntime.assertDatabase(label === "postgres" ? "postgres" : "embedded")
