/**
 * `npm run bench`: the benchmark harness (issue 5).
 *
 * Runs every scenario against PostgreSQL at `DATABASE_URL` (default
 * postgres://postgres@127.0.0.1:5432/postgres) beside its comparison, each
 * measured system in its own child process and its own fresh database
 * (`ironflow_bench_<run>_<n>`, dropped afterwards), prints one table and
 * writes `bench-results.json` at the repository root.
 *
 *   npm run bench                 full sizes, 60 s soak
 *   npm run bench -- --soak       full sizes, 10 minute soak
 *   npm run bench -- --quick      small sizes, every scenario, under a minute (CI smoke test)
 *   npm run bench -- --only limits   scenarios 8 and 9 alone (priorities, blocked key; with --quick: small)
 */
import { Command, FileSystem } from "@effect/platform"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Console, Effect, Layer, Logger, LogLevel, Redacted, Stream } from "effect"
import { randomUUID } from "node:crypto"
import { cpus, loadavg, totalmem } from "node:os"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { describeConfig, type IronflowConfig, median, round } from "./common.js"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const argv = process.argv.slice(2)
const quick = argv.includes("--quick")
const longSoak = argv.includes("--soak")
const only = argv.includes("--only") ? argv[argv.indexOf("--only") + 1] : undefined
const serverUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres"
const runId = randomUUID().replace(/-/g, "").slice(0, 8)

/** The sizes of one invocation. */
const sizes = quick
  ? {
    effects: 2_000,
    workflows: 200,
    workflowsWarmup: 20,
    ceilingSeconds: 1,
    pickupSamples: 30,
    pickupWarmup: 5,
    timers: 30,
    timerSpreadMs: 20,
    timerLeadMs: 500,
    historyShort: 10,
    historyLong: 500,
    historySamples: 20,
    soakSeconds: 3,
    soakWarmupSeconds: 1,
    soakRate: 200,
    embeddedEffects: 1_000,
    embeddedWorkflows: 100,
    priorityEffects: 2_000,
    blockedFree: 5_000,
    blockedRows: 10_000,
    repeats: 1
  }
  : {
    effects: 20_000,
    workflows: 2_000,
    workflowsWarmup: 50,
    ceilingSeconds: 5,
    pickupSamples: 200,
    pickupWarmup: 20,
    timers: 200,
    timerSpreadMs: 20,
    timerLeadMs: 1_500,
    historyShort: 10,
    historyLong: 10_000,
    historySamples: 100,
    soakSeconds: longSoak ? 600 : 60,
    soakWarmupSeconds: 10,
    soakRate: 200,
    embeddedEffects: 20_000,
    embeddedWorkflows: 2_000,
    priorityEffects: 20_000,
    blockedFree: 50_000,
    blockedRows: 100_000,
    repeats: 3
  }

const config = (
  effectWorkers: number,
  claimBatchSize: number,
  handlerConcurrency: number,
  maxConnections = 10
): IronflowConfig => ({ effectWorkers, claimBatchSize, handlerConcurrency, maxConnections })

/** RuntimeConfig candidates tried for scenario 1 (the first is the library's defaults). */
const effectCandidates: ReadonlyArray<IronflowConfig> = [
  config(1, 32, 16),
  config(1, 200, 64),
  config(1, 500, 200),
  config(2, 250, 64),
  config(2, 500, 100),
  config(4, 250, 64),
  config(4, 500, 100, 20)
]

/** Candidates for scenario 2, where each handler runs an execute (a transaction). */
const workflowCandidates: ReadonlyArray<IronflowConfig> = [
  config(1, 32, 16),
  config(1, 64, 32),
  config(1, 128, 64, 20),
  config(2, 64, 32, 20)
]

/** Used without a sweep by `--quick`. */
const quickEffectsConfig = config(2, 250, 64)
const quickWorkflowsConfig = config(1, 32, 16)

type Figures = Record<string, unknown>

const progress = (message: string) => Console.error(`[bench] ${message}`)

const num = (figures: Figures, key: string): number => {
  const value = figures[key]
  if (typeof value !== "number") throw new Error(`child result has no number ${key}: ${JSON.stringify(figures)}`)
  return value
}

const withDatabaseName = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

/** Runs `node [flags] --import tsx scratchpad/bench/<script> <args>` and parses its last JSON line. */
const child = (script: string, args: ReadonlyArray<string>, nodeFlags: ReadonlyArray<string> = []) =>
  Effect.scoped(Effect.gen(function*() {
    const command = Command.make(
      process.execPath,
      ...nodeFlags,
      "--import",
      "tsx",
      `scratchpad/bench/${script}`,
      ...args
    ).pipe(Command.workingDirectory(root), Command.stderr("inherit"))
    const started = performance.now()
    const proc = yield* Command.start(command)
    const [stdout, code] = yield* Effect.all(
      [proc.stdout.pipe(Stream.decodeText(), Stream.mkString), proc.exitCode],
      { concurrency: 2 }
    )
    const line = stdout.trim().split("\n").reverse().find((l) => l.startsWith("{"))
    if (code !== 0 || line === undefined) {
      return yield* Effect.fail(new Error(`${script} ${args.join(" ")} exited with code ${code}: ${stdout.trim()}`))
    }
    const wall = performance.now() - started
    yield* progress(
      `${script} ${args.filter((a) => !a.startsWith("postgres")).slice(0, 4).join(" ")}: ${round(wall / 1000, 1)} s`
    )
    return { ...(JSON.parse(line) as Figures), child_wall_ms: round(wall, 0) }
  })).pipe(
    // A child that hangs is killed (its scope closes) and fails the run.
    Effect.timeoutFail({
      duration: quick ? "60 seconds" : `${sizes.soakSeconds + 300} seconds`,
      onTimeout: () => new Error(`${script} ${args.join(" ")} did not finish in time`)
    })
  )

const program = Effect.gen(function*() {
  const admin = yield* PgClient.PgClient
  const fs = yield* FileSystem.FileSystem
  let databases = 0

  /** A fresh database on the server for one child, dropped when it ends. */
  const onFreshDatabase = <A, E, R>(use: (url: string) => Effect.Effect<A, E, R>) =>
    Effect.acquireUseRelease(
      Effect.gen(function*() {
        const name = `ironflow_bench_${runId}_${++databases}`
        yield* admin`CREATE DATABASE ${admin(name)}`
        return name
      }),
      (name) => use(withDatabaseName(serverUrl, name)),
      (name) =>
        admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`.pipe(
          Effect.tapErrorCause((cause) => Effect.logWarning(`could not drop ${name}`, cause)),
          Effect.ignore
        )
    )

  const onPostgres = (script: string, args: ReadonlyArray<string>, nodeFlags: ReadonlyArray<string> = []) =>
    onFreshDatabase((url) => child(script, ["--db", url, ...args], nodeFlags))
  const onEmbedded = (script: string, args: ReadonlyArray<string>, nodeFlags: ReadonlyArray<string> = []) =>
    child(script, ["--embedded", ...args], nodeFlags)
  const configArg = (c: IronflowConfig) => ["--config", JSON.stringify(c)]

  const serverVersion = (yield* admin<{ server_version: string }>`SHOW server_version`)[0].server_version
  // How busy the machine is without us, before the first child and after the last (other processes skew every figure).
  const cpuBusyPct = Effect.gen(function*() {
    const times = () =>
      cpus().reduce(
        (acc, cpu) => {
          const { idle, ...rest } = cpu.times
          return { idle: acc.idle + idle, busy: acc.busy + Object.values(rest).reduce((a, b) => a + b, 0) }
        },
        { idle: 0, busy: 0 }
      )
    const before = times()
    yield* Effect.sleep("500 millis")
    const after = times()
    return round(
      (100 * (after.busy - before.busy)) / Math.max(1, after.busy + after.idle - before.busy - before.idle),
      0
    )
  })
  const busyBefore = yield* cpuBusyPct
  // The library measured: HEAD and the files of src/ and migrations/ that differ from it.
  const git = (...args: Array<string>) =>
    Command.string(Command.make("git", ...args).pipe(Command.workingDirectory(root))).pipe(
      Effect.map((out) => out.trim()),
      Effect.orElseSucceed(() => "unknown")
    )
  const status = yield* git("status", "--porcelain", "--", "src", "migrations")
  const library = {
    commit: yield* git("rev-parse", "--short", "HEAD"),
    modified: status === "unknown" ? [] : status.split("\n").map((line) => line.trim()).filter((line) => line !== "")
  }
  const machine = {
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? "unknown",
    memory_gb: round(totalmem() / 1024 ** 3, 1),
    node: process.version,
    postgres: serverVersion,
    load_average_at_start: loadavg().map((l) => round(l, 2)),
    cpu_busy_before_start_pct: busyBefore
  }
  if (library.modified.length > 0) {
    yield* progress(`measuring ${library.commit} with uncommitted changes: ${library.modified.join(", ")}`)
  }
  yield* progress(
    `run ${runId}: ${
      quick ? "quick (small sizes)" : "full"
    }; ${machine.cpus} CPUs, node ${machine.node}, PostgreSQL ${serverVersion}`
  )

  // Scenarios 8 and 9 (issue #14): the drain with and without mixed priorities, in one run on one database
  // (target: mixed no more than 10 % slower); free effects behind one saturated key (target: at least half
  // the rate of the free effects alone, measured in the same run).
  const limitsScenarios = (c: IronflowConfig) =>
    Effect.gen(function*() {
      yield* progress("scenario 8: priorities")
      const priorities = yield* onPostgres("limits.ts", [
        "--scenario",
        "priorities",
        "--n",
        String(sizes.priorityEffects),
        "--rounds",
        "2",
        ...configArg(c)
      ])
      yield* progress("scenario 9: free effects behind a saturated key")
      const blocked = yield* onPostgres("limits.ts", [
        "--scenario",
        "blocked",
        "--free",
        String(sizes.blockedFree),
        "--blocked",
        String(sizes.blockedRows),
        ...configArg(c)
      ])
      return { priorities, blocked }
    })
  if (only === "limits") {
    const { blocked, priorities } = yield* limitsScenarios(effectCandidates[0])
    yield* Console.log(JSON.stringify({ machine, library, priorities, blocked }, null, 2))
    return
  }

  // Scenario 1: effect throughput, beside graphile-worker batched and plain.
  const effectsRunWith = (c: IronflowConfig, extra: ReadonlyArray<string>) =>
    onPostgres("effects.ts", ["--n", String(sizes.effects), ...configArg(c), ...extra])
  const effectsRun = (c: IronflowConfig) => effectsRunWith(c, [])
  const effectSweep: Array<{ config: IronflowConfig; effects_per_s: number }> = []
  let effectsConfig = quickEffectsConfig
  if (!quick) {
    yield* progress(`scenario 1: trying ${effectCandidates.length} runtime configurations`)
    for (const candidate of effectCandidates) {
      const figures = yield* effectsRun(candidate)
      effectSweep.push({ config: candidate, effects_per_s: num(figures, "effects_per_s") })
    }
    effectsConfig = effectSweep.reduce((best, next) => next.effects_per_s > best.effects_per_s ? next : best).config
  }
  yield* progress(`scenario 1: ${sizes.repeats} run(s) each, ironflow with ${describeConfig(effectsConfig)}`)
  const effectRuns: Array<Figures> = []
  const batchedRuns: Array<Figures> = []
  const plainRuns: Array<Figures> = []
  for (let i = 0; i < sizes.repeats; i++) {
    effectRuns.push(yield* effectsRun(effectsConfig))
    batchedRuns.push(yield* onPostgres("graphile.ts", ["--mode", "batched", "--n", String(sizes.effects)]))
    plainRuns.push(yield* onPostgres("graphile.ts", ["--mode", "plain", "--n", String(sizes.effects)]))
  }
  const medianOf = (runs: ReadonlyArray<Figures>, key: string) => median(runs.map((r) => num(r, key)))

  // Scenario 2: workflow round trips, and the commit ceiling with the same connection count.
  const workflowsRun = (c: IronflowConfig) =>
    onPostgres("workflows.ts", [
      "--n",
      String(sizes.workflows),
      "--warmup",
      String(sizes.workflowsWarmup),
      ...configArg(c)
    ])
  const workflowSweep: Array<{ config: IronflowConfig; workflows_per_s: number }> = []
  let workflowsConfig = quickWorkflowsConfig
  if (!quick) {
    yield* progress(`scenario 2: trying ${workflowCandidates.length} runtime configurations`)
    for (const candidate of workflowCandidates) {
      const figures = yield* workflowsRun(candidate)
      workflowSweep.push({ config: candidate, workflows_per_s: num(figures, "workflows_per_s") })
    }
    workflowsConfig = workflowSweep.reduce((best, next) => next.workflows_per_s > best.workflows_per_s ? next : best)
      .config
  }
  yield* progress(`scenario 2: ${sizes.repeats} run(s) with ${describeConfig(workflowsConfig)}`)
  const workflowRuns: Array<Figures> = []
  const ceilingRuns: Array<Figures> = []
  for (let i = 0; i < sizes.repeats; i++) {
    workflowRuns.push(yield* workflowsRun(workflowsConfig))
    ceilingRuns.push(
      yield* onPostgres("ceiling.ts", [
        "--maxConnections",
        String(workflowsConfig.maxConnections),
        "--seconds",
        String(sizes.ceilingSeconds)
      ])
    )
  }

  // Scenario 3: pickup latency, beside graphile-worker's add → start.
  yield* progress("scenario 3: pickup latency")
  const pickupArgs = ["--samples", String(sizes.pickupSamples), "--warmup", String(sizes.pickupWarmup)]
  const pickupRuns: Array<Figures> = []
  const graphilePickupRuns: Array<Figures> = []
  for (let i = 0; i < sizes.repeats; i++) {
    pickupRuns.push(yield* onPostgres("pickup.ts", [...pickupArgs, ...configArg(effectsConfig)]))
    graphilePickupRuns.push(yield* onPostgres("graphile.ts", ["--mode", "pickup", ...pickupArgs]))
  }

  // Scenario 4: timer lateness.
  yield* progress("scenario 4: timer lateness")
  const timerArgs = [
    "--n",
    String(sizes.timers),
    "--spreadMs",
    String(sizes.timerSpreadMs),
    "--leadMs",
    String(sizes.timerLeadMs),
    ...configArg(effectsConfig)
  ]
  const timers = yield* onPostgres("timers.ts", timerArgs)

  // Scenario 5: execute latency against history length.
  yield* progress("scenario 5: history length")
  const history = yield* onPostgres("history.ts", [
    "--short",
    String(sizes.historyShort),
    "--long",
    String(sizes.historyLong),
    "--samples",
    String(sizes.historySamples)
  ])

  // Scenario 6: RSS growth under steady load (the peak comes from scenario 1).
  yield* progress(`scenario 6: soak, ${sizes.soakSeconds} s at ${sizes.soakRate} workflows/s`)
  const soak = yield* onPostgres("soak.ts", [
    "--rate",
    String(sizes.soakRate),
    "--seconds",
    String(sizes.soakSeconds),
    "--warmupSeconds",
    String(sizes.soakWarmupSeconds),
    ...configArg(workflowsConfig)
  ], ["--expose-gc"])

  // Scenario 7: scenarios 1 and 2 on the embedded database (PGlite), with its memory footprint.
  yield* progress("scenario 7: embedded database")
  // Effects with --expose-gc, so that the RSS after close is taken after a forced collection. In memory,
  // then on a data directory: created (initdb runs in the process) and reopened (an application's restart).
  const embeddedEffectsRun = (pglite: Record<string, unknown>) =>
    onEmbedded(
      "effects.ts",
      ["--n", String(sizes.embeddedEffects), "--pglite", JSON.stringify(pglite), ...configArg(effectsConfig)],
      ["--expose-gc"]
    )
  const embeddedEffects = yield* embeddedEffectsRun({})
  const embeddedOnDisk = yield* Effect.scoped(Effect.gen(function*() {
    const dataDir = `${yield* fs.makeTempDirectoryScoped({ prefix: "ironflow-bench-" })}/data`
    return { created: yield* embeddedEffectsRun({ dataDir }), reopened: yield* embeddedEffectsRun({ dataDir }) }
  }))
  // PGlite's own settings, without ours (shared_buffers), for comparison.
  const embeddedPgliteDefaults = quick ? undefined : yield* embeddedEffectsRun({ settings: { shared_buffers: null } })
  const embeddedWorkflows = yield* onEmbedded("workflows.ts", [
    "--n",
    String(sizes.embeddedWorkflows),
    "--warmup",
    String(sizes.workflowsWarmup),
    ...configArg(workflowsConfig)
  ])

  const limits = yield* limitsScenarios(effectsConfig)

  // Extras (not with --quick): diagnostics beside the figures.
  // - the same effect runtime with claims served from memory: what the process spends per effect;
  // - pickup and timers with the executes in another service (own connections and store, no workers),
  //   as an API process beside a worker process: only the database can wake the workers.
  const extras = quick ? undefined : yield* Effect.gen(function*() {
    yield* progress("extras: in-memory claims, cross-process pickup and timers")
    return {
      inMemoryClaims: yield* effectsRunWith(effectsConfig, ["--store", "memory"]),
      pickupSplit: yield* onPostgres("pickup.ts", [
        ...pickupArgs,
        "--topology",
        "split",
        ...configArg(effectsConfig)
      ]),
      // Due 100 ms on: the first timers fall due while the timer worker sleeps (up to timerPollInterval).
      timersSplit: yield* onPostgres("timers.ts", [...timerArgs, "--topology", "split", "--leadMs", "100"])
    }
  })

  const results = {
    effects_per_s: medianOf(effectRuns, "effects_per_s"),
    graphile_batched_jobs_per_s: medianOf(batchedRuns, "jobs_per_s"),
    graphile_plain_jobs_per_s: medianOf(plainRuns, "jobs_per_s"),
    workflows_per_s: medianOf(workflowRuns, "workflows_per_s"),
    commit_ceiling_tx_per_s: medianOf(ceilingRuns, "commit_ceiling_tx_per_s"),
    pickup_p50_ms: medianOf(pickupRuns, "pickup_p50_ms"),
    pickup_p99_ms: medianOf(pickupRuns, "pickup_p99_ms"),
    graphile_pickup_p50_ms: medianOf(graphilePickupRuns, "pickup_p50_ms"),
    graphile_pickup_p99_ms: medianOf(graphilePickupRuns, "pickup_p99_ms"),
    timer_lateness_p50_ms: num(timers, "timer_lateness_p50_ms"),
    timer_lateness_p99_ms: num(timers, "timer_lateness_p99_ms"),
    history_10_ms: num(history, "history_10_ms"),
    history_10000_ms: num(history, "history_10000_ms"),
    peak_rss_mb: Math.max(...effectRuns.map((r) => num(r, "peak_rss_mb"))),
    graphile_batched_peak_rss_mb: Math.max(...batchedRuns.map((r) => num(r, "peak_rss_mb"))),
    rss_growth_mb: num(soak, "rss_growth_mb"),
    embedded_effects_per_s: num(embeddedEffects, "effects_per_s"),
    embedded_workflows_per_s: num(embeddedWorkflows, "workflows_per_s"),
    embedded_peak_rss_mb: num(embeddedEffects, "peak_rss_mb"),
    embedded_rss_after_close_mb: num(embeddedEffects, "rss_after_close_mb"),
    embedded_start_rss_mb: num(embeddedEffects, "start_rss_mb"),
    embedded_data_dir_created_peak_rss_mb: num(embeddedOnDisk.created, "peak_rss_mb"),
    embedded_data_dir_reopened_peak_rss_mb: num(embeddedOnDisk.reopened, "peak_rss_mb"),
    embedded_data_dir_reopened_rss_after_close_mb: num(embeddedOnDisk.reopened, "rss_after_close_mb"),
    priorities_mixed_over_plain: num(limits.priorities, "mixed_over_plain"),
    blocked_free_behind_over_alone: num(limits.blocked, "behind_over_alone")
  }
  const extraResults = extras === undefined ? undefined : {
    effects_per_s_in_memory_claims: num(extras.inMemoryClaims, "effects_per_s"),
    pickup_cross_process_p50_ms: num(extras.pickupSplit, "pickup_p50_ms"),
    pickup_cross_process_p99_ms: num(extras.pickupSplit, "pickup_p99_ms"),
    timer_lateness_cross_process_p50_ms: num(extras.timersSplit, "timer_lateness_p50_ms"),
    timer_lateness_cross_process_p99_ms: num(extras.timersSplit, "timer_lateness_p99_ms")
  }

  const yes = (met: boolean) => (met ? "yes" : "NO")
  const fmt = (value: number) => value >= 100 ? Math.round(value).toLocaleString("en-US") : String(round(value, 2))
  const rows: Array<[string, string, string, string, string]> = [
    [
      "effects_per_s",
      fmt(results.effects_per_s),
      `${fmt(results.graphile_batched_jobs_per_s)} graphile batched (${fmt(results.graphile_plain_jobs_per_s)} plain)`,
      ">= graphile batched",
      yes(results.effects_per_s >= results.graphile_batched_jobs_per_s)
    ],
    [
      "workflows_per_s",
      fmt(results.workflows_per_s),
      `commit ceiling ${fmt(results.commit_ceiling_tx_per_s)} tx/s`,
      ">= 1,600",
      yes(results.workflows_per_s >= 1600)
    ],
    [
      "pickup_p50_ms",
      fmt(results.pickup_p50_ms),
      `${fmt(results.graphile_pickup_p50_ms)} graphile`,
      "<= graphile",
      yes(results.pickup_p50_ms <= results.graphile_pickup_p50_ms)
    ],
    [
      "pickup_p99_ms",
      fmt(results.pickup_p99_ms),
      `${fmt(results.graphile_pickup_p99_ms)} graphile`,
      "< 10",
      yes(results.pickup_p99_ms < 10)
    ],
    ["timer_lateness_p50_ms", fmt(results.timer_lateness_p50_ms), "", "", ""],
    [
      "timer_lateness_p99_ms",
      fmt(results.timer_lateness_p99_ms),
      "",
      "< 20",
      yes(results.timer_lateness_p99_ms < 20)
    ],
    ["history_10_ms", fmt(results.history_10_ms), "", "", ""],
    [
      sizes.historyLong === 10_000 ? "history_10000_ms" : `history_10000_ms (${sizes.historyLong} events)`,
      fmt(results.history_10000_ms),
      "",
      `<= 1.5 x history_10_ms (${fmt(1.5 * results.history_10_ms)})`,
      yes(results.history_10000_ms <= 1.5 * results.history_10_ms)
    ],
    [
      "peak_rss_mb",
      fmt(results.peak_rss_mb),
      `${fmt(results.graphile_batched_peak_rss_mb)} graphile batched`,
      "",
      ""
    ],
    [
      `rss_growth_mb (${sizes.soakSeconds} s soak${longSoak ? "" : ", shorter than 10 min"})`,
      fmt(results.rss_growth_mb),
      "",
      `(heap used: ${fmt(num(soak, "heap_used_growth_mb"))} MB)`,
      ""
    ],
    ["embedded_effects_per_s", fmt(results.embedded_effects_per_s), "", "", ""],
    ["embedded_workflows_per_s", fmt(results.embedded_workflows_per_s), "", "", ""],
    [
      `embedded_peak_rss_mb (${sizes.embeddedEffects} effects, in memory)`,
      fmt(results.embedded_peak_rss_mb),
      embeddedPgliteDefaults === undefined
        ? ""
        : `${fmt(num(embeddedPgliteDefaults, "peak_rss_mb"))} with PGlite's default settings`,
      `(process at start: ${fmt(results.embedded_start_rss_mb)} MB)`,
      ""
    ],
    ["embedded_rss_after_close_mb (in memory)", fmt(results.embedded_rss_after_close_mb), "", "", ""],
    [
      "priorities_mixed_over_plain",
      fmt(results.priorities_mixed_over_plain),
      `${fmt(num(limits.priorities, "mixed_priorities_effects_per_s"))} / ${
        fmt(num(limits.priorities, "plain_effects_per_s"))
      } effects/s`,
      ">= 0.9",
      yes(results.priorities_mixed_over_plain >= 0.9)
    ],
    [
      `blocked_free_behind_over_alone (${sizes.blockedRows} blocked, ${sizes.blockedFree} free)`,
      fmt(results.blocked_free_behind_over_alone),
      `${fmt(num(limits.blocked, "free_behind_blocked_effects_per_s"))} / ${
        fmt(num(limits.blocked, "free_alone_effects_per_s"))
      } effects/s`,
      ">= 0.5",
      yes(results.blocked_free_behind_over_alone >= 0.5)
    ],
    [
      "embedded_peak_rss_mb, data directory: created / reopened",
      `${fmt(results.embedded_data_dir_created_peak_rss_mb)} / ${fmt(results.embedded_data_dir_reopened_peak_rss_mb)}`,
      "",
      `(after close, reopened: ${fmt(results.embedded_data_dir_reopened_rss_after_close_mb)} MB)`,
      ""
    ]
  ]
  if (extraResults !== undefined) {
    rows.push(
      [
        "extra: effects_per_s_in_memory_claims",
        fmt(extraResults.effects_per_s_in_memory_claims),
        "",
        "(claims and acks without the database)",
        ""
      ],
      [
        "extra: pickup_cross_process_p50_ms",
        fmt(extraResults.pickup_cross_process_p50_ms),
        "",
        "(execute in another service)",
        ""
      ],
      ["extra: pickup_cross_process_p99_ms", fmt(extraResults.pickup_cross_process_p99_ms), "", "", ""],
      [
        "extra: timer_lateness_cross_process_p50_ms",
        fmt(extraResults.timer_lateness_cross_process_p50_ms),
        "",
        "",
        ""
      ],
      [
        "extra: timer_lateness_cross_process_p99_ms",
        fmt(extraResults.timer_lateness_cross_process_p99_ms),
        "",
        "",
        ""
      ]
    )
  }
  const header: [string, string, string, string, string] = ["metric", "ours", "peer", "target", "met?"]
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i])).join(" | ").trimEnd()
  yield* Console.log("")
  yield* Console.log(line(header))
  yield* Console.log(widths.map((w) => "-".repeat(w)).join("-|-"))
  for (const row of rows) yield* Console.log(line(row))
  yield* Console.log("")
  yield* Console.log(`effects: ${describeConfig(effectsConfig)}`)
  yield* Console.log(`workflows, soak: ${describeConfig(workflowsConfig)}`)
  const busyAfter = yield* cpuBusyPct
  if (machine.cpu_busy_before_start_pct > 25 || busyAfter > 25) {
    yield* Console.log(
      `the CPUs were ${machine.cpu_busy_before_start_pct} % busy before this run and ${busyAfter} % after it, without it: other processes shared the machine, figures are noisy`
    )
  }
  if (quick) yield* Console.log("--quick: small sizes, a smoke test; the figures are not comparable to the targets")
  if (!longSoak) {
    yield* Console.log(`soak: ${sizes.soakSeconds} s (the 10 minute soak is \`npm run bench -- --soak\`)`)
  }

  const report = {
    ...results,
    ...extraResults,
    date: new Date().toISOString(),
    quick,
    machine,
    library,
    sizes,
    effects_config: effectsConfig,
    workflows_config: workflowsConfig,
    sweeps: { effects: effectSweep, workflows: workflowSweep },
    runs: {
      effects: effectRuns,
      effects_in_memory_claims: extras?.inMemoryClaims,
      graphile_batched: batchedRuns,
      graphile_plain: plainRuns,
      workflows: workflowRuns,
      ceiling: ceilingRuns,
      pickup: pickupRuns,
      graphile_pickup: graphilePickupRuns,
      pickup_cross_process: extras?.pickupSplit,
      timers,
      timers_cross_process: extras?.timersSplit,
      history,
      soak,
      embedded_effects: embeddedEffects,
      embedded_effects_data_dir: embeddedOnDisk,
      embedded_effects_pglite_defaults: embeddedPgliteDefaults,
      embedded_workflows: embeddedWorkflows
    },
    load_average_at_end: loadavg().map((l) => round(l, 2)),
    cpu_busy_after_end_pct: busyAfter
  }
  const path = resolve(root, "bench-results.json")
  yield* fs.writeFileString(path, JSON.stringify(report, null, 2) + "\n")
  yield* progress(`wrote ${path}`)
})

const Admin = PgClient.layer({ url: Redacted.make(serverUrl), maxConnections: 1, applicationName: "ironflow-bench" })

program.pipe(
  Effect.provide(Layer.mergeAll(Admin, NodeContext.layer)),
  Effect.provide(Logger.minimumLogLevel(LogLevel.Warning)),
  NodeRuntime.runMain
)
