/**
 * The commit ceiling of scenario 2: `--maxConnections` fibers, each looping
 * BEGIN / INSERT one row / COMMIT through the same driver (`@effect/sql-pg`,
 * `sql.withTransaction`) on a scratch table, for `--seconds` (after a
 * half-second warm-up). Prints transactions per second.
 *
 *   node --import tsx scratchpad/bench/ceiling.ts --db postgres://... --maxConnections 10 --seconds 5
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { args, databaseLayer, emit, progress, round, runChild } from "./common.js"

const connections = args.number("maxConnections", 10)
const seconds = args.number("seconds", 5)

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE IF NOT EXISTS bench_ceiling (id bigserial PRIMARY KEY, fiber int NOT NULL, at timestamptz NOT NULL)`
  let commits = 0
  let counting = false
  const loop = (fiber: number) =>
    sql`INSERT INTO bench_ceiling (fiber, at) VALUES (${fiber}, ${new Date()})`.pipe(
      sql.withTransaction,
      Effect.tap(() => Effect.sync(() => counting && commits++)),
      Effect.forever
    )
  yield* progress("ceiling", `${connections} fibers, one single-row insert transaction at a time each`)
  const measured = Effect.gen(function*() {
    yield* Effect.sleep("500 millis")
    counting = true
    const started = performance.now()
    yield* Effect.sleep(`${seconds} seconds`)
    counting = false
    return { commits, elapsed: performance.now() - started }
  })
  const result = yield* Effect.raceFirst(
    measured,
    Effect.forEach(Array.from({ length: connections }, (_, i) => i), loop, {
      concurrency: "unbounded",
      discard: true
    }).pipe(Effect.zipRight(Effect.never))
  )
  const perSecond = result.commits / (result.elapsed / 1000)
  yield* progress("ceiling", `${result.commits} commits in ${round(result.elapsed, 0)} ms`)
  yield* emit({ connections, seconds, commit_ceiling_tx_per_s: round(perSecond, 0) })
})

runChild(program.pipe(Effect.provide(databaseLayer(connections))))
