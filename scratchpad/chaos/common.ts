/**
 * Pieces shared by the driver's scenarios: arguments, fresh databases,
 * polling, starting workflows, and the services the driver uses.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Console, Duration, Effect, Layer, Option, Redacted, Schedule } from "effect"
import * as DeadLetters from "ironflow/DeadLetters"
import * as ExecuteOutcome from "ironflow/ExecuteOutcome"
import * as PgWorkflowStore from "ironflow/PgWorkflowStore"
import * as WorkflowRegistry from "ironflow/WorkflowRegistry"
import * as WorkflowService from "ironflow/WorkflowService"
import { randomBytes } from "node:crypto"
import { ChaosHandler, chaosSchemaSql, ChaosWorkflow, HandlerBehaviour, Start } from "./ChaosWorkflow.js"

export const runId = randomBytes(4).toString("hex")

/** `--name value`, `--name=value` and `--flag` arguments. */
export const args = (() => {
  const values = new Map<string, string | true>()
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith("--")) continue
    const [name, inline] = argv[i].slice(2).split(/=(.*)/s, 2)
    if (inline !== undefined) values.set(name, inline)
    else if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) values.set(name, argv[++i])
    else values.set(name, true)
  }
  const get = (name: string) => {
    const value = values.get(name)
    return typeof value === "string" ? value : undefined
  }
  return {
    string: (name: string, fallback: string) => get(name) ?? fallback,
    number: (name: string, fallback: number) => (get(name) === undefined ? fallback : Number(get(name))),
    flag: (name: string) => values.get(name) === true || get(name) === "true"
  }
})()

/** The server the run creates its databases on: DATABASE_URL's server, else the local default. */
export const serverUrl = process.env.CHAOS_DATABASE_URL ?? process.env.DATABASE_URL ??
  "postgres://postgres@127.0.0.1:5432/postgres"

export const databaseUrl = (database: string, override?: { readonly port: number }) => {
  const url = new URL(serverUrl)
  url.pathname = `/${database}`
  if (override !== undefined) {
    url.hostname = "127.0.0.1"
    url.port = String(override.port)
  }
  return url.toString()
}

const started = Date.now()
export const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s`
export const say = (scenario: string, message: string) => Console.log(`[${elapsed()}] ${scenario}: ${message}`)

export class Failure extends Error {}

/** Polls `check` every `interval` until it returns `Some`, failing after `timeout` with a description. */
export const waitFor = <A, E, R>(
  description: string,
  check: Effect.Effect<Option.Option<A>, E, R>,
  options: { readonly timeout: Duration.DurationInput; readonly interval?: Duration.DurationInput }
): Effect.Effect<A, E | Failure, R> =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(options.timeout)
    while (true) {
      const result = yield* check
      if (Option.isSome(result)) return result.value
      if (Date.now() > deadline) {
        return yield* Effect.fail(
          new Failure(`timed out after ${Duration.format(options.timeout)} waiting for ${description}`)
        )
      }
      yield* Effect.sleep(options.interval ?? "200 millis")
    }
  })

/** Retries a driver-side database statement through a database outage (restart mode). */
export const resilient = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.retry(self, Schedule.spaced("500 millis").pipe(Schedule.intersect(Schedule.recurs(240))))

/**
 * Ids of a scenario's instances: mostly plain, every 50th with quotes,
 * backslashes, SQL metacharacters, array-literal syntax and unicode.
 */
export const makeIds = (prefix: string, count: number) =>
  Array.from({ length: count }, (_, i) =>
    i % 50 === 13
      ? `${prefix}-${i}-it's "q" \\ ; DROP TABLE ironflow.events; -- {a,b} %_$1 ünïcødé 🚀`
      : `${prefix}-${i}`)

/** Starts the instances (retrying through outages); fails on any outcome other than Accepted. */
export const startWorkflows = (ids: ReadonlyArray<string>, poisoned: (index: number) => boolean = () => false) =>
  Effect.gen(function*() {
    const service = yield* WorkflowService.WorkflowService
    let rejected = 0
    yield* Effect.forEach(
      ids,
      (id, i) =>
        resilient(service.execute(ChaosWorkflow, new Start({ id, poison: poisoned(i) }))).pipe(
          Effect.tap((outcome) =>
            Effect.sync(() => {
              if (!ExecuteOutcome.isAccepted(outcome)) rejected++
            })
          )
        ),
      { concurrency: 8, discard: true }
    )
    if (rejected > 0) return yield* Effect.fail(new Failure(`${rejected} start(s) were not accepted`))
  })

/**
 * A fresh database for one scenario (`ironflow_chaos_<run>_<scenario>`), migrated, with the
 * harness's schema; dropped afterwards. Provides the driver's services over it.
 */
export const withDatabase = <A, E, R>(
  scenario: string,
  use: (database: string) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function*() {
    const name = `ironflow_chaos_${runId}_${scenario}`
    const admin = yield* PgClient.PgClient
    yield* resilient(admin`CREATE DATABASE ${admin(name)}`)
    const drop = resilient(admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`).pipe(
      Effect.tapErrorCause((cause) => Effect.logWarning(`could not drop ${name}`, cause)),
      Effect.ignore
    )
    const services = Layer.mergeAll(WorkflowService.layer, DeadLetters.layer).pipe(
      Layer.provide(WorkflowRegistry.layer([ChaosHandler])),
      Layer.provide(HandlerBehaviour.layer({ delayMs: [0, 0], worker: "driver" })),
      Layer.provideMerge(PgWorkflowStore.layer),
      Layer.provideMerge(
        PgClient.layer({
          url: Redacted.make(databaseUrl(name)),
          maxConnections: 4,
          applicationName: "ironflow-chaos-driver"
        })
      )
    )
    const setup = Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(chaosSchemaSql))
    return yield* Effect.zipRight(setup, use(name)).pipe(
      Effect.scoped,
      Effect.provide(services),
      Effect.ensuring(drop)
    )
  })

export const percentile = (values: ReadonlyArray<number>, p: number) => {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}
