/**
 * Shared pieces of the benchmark children: arguments, the database layer,
 * the RSS sampler, percentiles, progress lines (stderr) and the one JSON
 * line each child prints on stdout for the orchestrator (`main.ts`).
 */
import { NodeRuntime } from "@effect/platform-node"
import { defaultTeardown } from "@effect/platform/Runtime"
import type { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import {
  Console,
  Context,
  Deferred,
  type Duration,
  Effect,
  Layer,
  Logger,
  LogLevel,
  Redacted,
  Ref,
  Schedule
} from "effect"
import type { RuntimeConfig, Workflow } from "ironflow"
import { PgliteClient, PgWorkflowStore, WorkflowRegistry, WorkflowService } from "ironflow"

/** The knobs of one ironflow process that the benchmark varies. */
export interface IronflowConfig {
  readonly effectWorkers: number
  readonly claimBatchSize: number
  readonly handlerConcurrency: number
  /** Size of the PgClient pool (ignored on the embedded database, which is one session). */
  readonly maxConnections: number
}

/** `RuntimeConfig` options from a benchmark configuration. */
export const runtimeOptions = (config: IronflowConfig): RuntimeConfig.Options => ({
  effectWorkers: config.effectWorkers,
  claimBatchSize: config.claimBatchSize,
  handlerConcurrency: config.handlerConcurrency
})

export const describeConfig = (config: IronflowConfig): string =>
  `effectWorkers ${config.effectWorkers}, claimBatchSize ${config.claimBatchSize}, handlerConcurrency ${config.handlerConcurrency}, maxConnections ${config.maxConnections}`

/**
 * The arguments of a child: `--db <url>` (PostgreSQL) or `--embedded`
 * (PGlite in memory), `--config <json>`, and scenario specific `--name value`.
 */
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
  const get = (name: string): string | undefined => {
    const value = values.get(name)
    return typeof value === "string" ? value : undefined
  }
  return {
    string: (name: string, fallback: string): string => get(name) ?? fallback,
    number: (name: string, fallback: number): number => {
      const value = get(name)
      return value === undefined ? fallback : Number(value)
    },
    flag: (name: string): boolean => values.get(name) === true || get(name) === "true",
    config: (): IronflowConfig => {
      const raw = get("config")
      const defaults: IronflowConfig = {
        effectWorkers: 1,
        claimBatchSize: 32,
        handlerConcurrency: 16,
        maxConnections: 10
      }
      return raw === undefined ? defaults : { ...defaults, ...(JSON.parse(raw) as Partial<IronflowConfig>) }
    }
  }
})()

/**
 * Where the child runs: PostgreSQL at `--db` (a database of its own: the
 * child creates tables in it), or PGlite in memory with `--embedded`.
 */
export const backend = (): { readonly embedded: boolean; readonly url: string } => {
  const embedded = args.flag("embedded")
  const url = args.string("db", "")
  if (!embedded && url === "") {
    throw new Error("pass --db <url of a scratch database> or --embedded (npm run bench creates one per child)")
  }
  return { embedded, url }
}

/** The `SqlClient` of the child: a PgClient pool of `maxConnections`, or the embedded database. */
export const databaseLayer = (maxConnections: number): Layer.Layer<SqlClient.SqlClient, unknown> => {
  const { embedded, url } = backend()
  const pglite = args.string("pglite", "")
  return embedded
    ? PgliteClient.layer(pglite === "" ? {} : JSON.parse(pglite))
    : PgClient.layer({ url: Redacted.make(url), maxConnections, applicationName: "ironflow-bench" })
}

/**
 * `--topology split`: inputs are executed through a `WorkflowService` with its
 * own pool and store and no workers, as another process of the application
 * would (an API server beside a worker process); only the database
 * (LISTEN/NOTIFY, or polling) can wake the workers. `same` (default): one
 * process executes and runs the workers.
 */
export const topology = (): "same" | "split" => (args.string("topology", "same") === "split" ? "split" : "same")

/** A `WorkflowService` over its own connections and store, without workers (another process, in effect). */
export const separateService = (registrations: ReadonlyArray<Workflow.Registration>, maxConnections: number) =>
  Layer.build(
    WorkflowService.layer.pipe(
      Layer.provide(WorkflowRegistry.layer(registrations)),
      Layer.provide(PgWorkflowStore.layer),
      Layer.provide(databaseLayer(maxConnections))
    )
  ).pipe(Effect.map((context) => Context.get(context, WorkflowService.WorkflowService)))

/** A progress line on stderr. */
export const progress = (scenario: string, message: string) => Console.error(`[bench ${scenario}] ${message}`)

/** The result line on stdout (with this process's CPU time so far); the orchestrator reads the last JSON line. */
export const emit = (result: Record<string, unknown>) =>
  Effect.suspend(() => {
    const cpu = process.cpuUsage()
    return Console.log(JSON.stringify({ ...result, process_cpu_ms: Math.round((cpu.user + cpu.system) / 1000) }))
  })

export const mb = (bytes: number): number => Math.round((bytes / 1024 / 1024) * 10) / 10

export const round = (value: number, digits = 2): number => {
  const factor = 10 ** digits
  return Math.round(value * factor) / factor
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples. */
export const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]
}

export const median = (samples: ReadonlyArray<number>): number => percentile(samples, 50)

/**
 * Samples `process.memoryUsage().rss` every 100 ms while the scope is open;
 * `peak` is the largest sample so far (in bytes), `current` the latest.
 */
export const rssSampler = Effect.gen(function*() {
  const peak = yield* Ref.make(process.memoryUsage().rss)
  const sample = Effect.sync(() => process.memoryUsage().rss).pipe(
    Effect.flatMap((rss) => Ref.update(peak, (max) => Math.max(max, rss)))
  )
  yield* sample.pipe(Effect.repeat(Schedule.spaced("100 millis")), Effect.forkScoped)
  return { peak: Effect.zipRight(sample, Ref.get(peak)) }
})

/** RSS after garbage collection (forced when node runs with `--expose-gc`) has had a moment. */
export const rssAfterGc = Effect.gen(function*() {
  const gc = (globalThis as { gc?: () => void }).gc
  for (let i = 0; i < 3; i++) {
    gc?.()
    yield* Effect.sleep("200 millis")
  }
  return process.memoryUsage().rss
})

/**
 * Counts calls (handler calls, decisions) and records `performance.now()` of
 * the call that reaches `target`.
 */
export const makeCounter = (target: number) =>
  Effect.gen(function*() {
    const reached = yield* Deferred.make<number>()
    let count = 0
    return {
      /** Synchronous, for handlers and decisions. */
      hit: (): void => {
        count++
        if (count === target) Deferred.unsafeDone(reached, Effect.succeed(performance.now()))
      },
      count: () => count,
      reached: Deferred.await(reached)
    }
  })

/** Repeats `check` every `interval` until it returns true. */
export const waitUntil = <E, R>(check: Effect.Effect<boolean, E, R>, interval: Duration.DurationInput = "10 millis") =>
  check.pipe(Effect.repeat({ schedule: Schedule.spaced(interval), until: (done) => done }), Effect.asVoid)

/** Logs go to stderr (stdout carries the result line), warnings and errors only. */
export const ChildLogger = Layer.merge(
  Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger)),
  Logger.minimumLogLevel(LogLevel.Warning)
)

/**
 * Runs a child's program and exits the process when it ends (pools and
 * worker libraries may keep handles open), with code 1 on failure.
 */
export const runChild = <E>(program: Effect.Effect<void, E>) =>
  NodeRuntime.runMain(Effect.provide(program, ChildLogger), {
    disablePrettyLogger: true,
    teardown: (exit, onExit) =>
      defaultTeardown(exit, (code) => {
        onExit(code)
        process.exit(code)
      })
  })
