/**
 * Shared by the chaos suites: a fresh PostgreSQL database per suite
 * (`ironflow_chaos_<random>`, dropped afterwards), PgClient layers on it, and
 * the figures each test reports (printed, and appended to CHAOS_FIGURES_FILE
 * for scratchpad/chaos/last-run.json).
 */
import { PgClient } from "@effect/sql-pg"
import { Config, Context, Effect, Layer, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import { appendFileSync } from "node:fs"

const serverUrl = Config.string("CHAOS_DATABASE_URL").pipe(
  Config.orElse(() => Config.string("TEST_DATABASE_URL")),
  Config.orElse(() => Config.string("DATABASE_URL")),
  Config.withDefault("postgres://postgres@127.0.0.1:5432/postgres")
)

export class ChaosDatabase extends Context.Tag("chaos/ChaosDatabase")<ChaosDatabase, { readonly url: string }>() {
  /** A fresh database for the suite, dropped when the suite ends. */
  static layer = Layer.scoped(
    ChaosDatabase,
    Effect.gen(function*() {
      const server = yield* serverUrl
      const name = `ironflow_chaos_${randomUUID().replace(/-/g, "").slice(0, 16)}`
      const admin = yield* Layer.build(PgClient.layer({ url: Redacted.make(server), maxConnections: 1 })).pipe(
        Effect.map(Context.get(PgClient.PgClient))
      )
      yield* admin`CREATE DATABASE ${admin(name)}`
      yield* Effect.addFinalizer(() =>
        admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`.pipe(
          Effect.tapErrorCause((cause) => Effect.logWarning(`could not drop ${name}`, cause)),
          Effect.ignore
        )
      )
      const url = new URL(server)
      url.pathname = `/${name}`
      return { url: url.toString() }
    })
  )
}

/** A PgClient (its own pool, as another process would have) on the suite's database. */
export const pgOn = (url: string, maxConnections = 5) =>
  PgClient.layer({ url: Redacted.make(url), maxConnections, applicationName: "ironflow-chaos-test" })

/** Prints a test's figures and hands them to the chaos driver. */
export const report = (test: string, figures: Record<string, number | string | boolean>) =>
  Effect.sync(() => {
    console.log(`[chaos] ${test}: ${JSON.stringify(figures)}`)
    const file = process.env.CHAOS_FIGURES_FILE
    if (file !== undefined) appendFileSync(file, JSON.stringify({ test, figures }) + "\n")
  })
