/**
 * `npm run test:chaos`: the reliability harness (issue 6). Drives real
 * runtime processes against real PostgreSQL, then runs the vitest chaos
 * suites (test/chaos/*.chaos.ts: races, bad input, property test). Every
 * scenario prints its figures and fails on any loss; the figures of the run
 * go to scratchpad/chaos/last-run.json. Exit code 1 if anything failed.
 *
 *   npm run test:chaos                       # default (CI): well under 6 minutes
 *   npm run test:chaos -- --long             # bigger storm and limits runs, 60 s outage
 *   npm run test:chaos -- --db-outage restart   # restart the real server (never on a shared one)
 *   npm run test:chaos -- --only storm,sigterm  # some of: storm, once, outage, sigterm, lease, skew, schedules, limits, vitest
 *   npm run test:chaos -- --workflows 1000 --outage-seconds 5
 *   npm run test:chaos -- --only limits --limits-workflows 1000 --limits-kill-every-ms 1000
 *
 * The limits scenario (issue 14) SIGKILLs processes running effects under a
 * concurrency limit of 2 per key and sweeps the recorded runs per key: never
 * more than 2 at once, and 2 reached on the hot key (about 15-40 s).
 *
 * Each scenario runs on its own fresh database `ironflow_chaos_<run>_<scenario>`
 * on DATABASE_URL's server (default postgres://postgres@127.0.0.1:5432/postgres),
 * dropped at the end. Worker logs go to a temporary directory, printed at the end.
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Cause, Console, Effect, Exit, Layer, Redacted } from "effect"
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { cpus, loadavg, tmpdir, totalmem } from "node:os"
import { join } from "node:path"
import * as ClockSkew from "./clockSkew.js"
import { args, databaseUrl, elapsed, runId, serverUrl, withDatabase } from "./common.js"
import * as ExactlyOnce from "./exactlyOnce.js"
import * as LeaseExpiry from "./leaseExpiry.js"
import * as Limits from "./limits.js"
import * as Outage from "./outage.js"
import { spawnedSince } from "./processes.js"
import type { ScenarioOutcome } from "./scenario.js"
import * as Schedules from "./schedules.js"
import * as Sigterm from "./sigterm.js"
import * as Storm from "./storm.js"

const long = args.flag("long")
const outageMode = args.string("db-outage", "proxy") === "restart" ? "restart" : "proxy"
const only = new Set(
  args.string("only", "storm,once,outage,sigterm,lease,skew,schedules,limits,vitest").split(",").map((s) => s.trim())
)
const logDir = mkdtempSync(join(tmpdir(), "ironflow-chaos-"))
const here = new URL(".", import.meta.url).pathname
const root = new URL("../../", import.meta.url).pathname

interface ScenarioResult {
  readonly name: string
  readonly passed: boolean
  readonly seconds: number
  readonly figures: Record<string, number | string | boolean>
  readonly failures: ReadonlyArray<string>
}

const printFigures = (result: ScenarioResult) =>
  Effect.gen(function*() {
    yield* Console.log(`\n── ${result.name}: ${result.passed ? "PASSED" : "FAILED"} (${result.seconds.toFixed(1)} s)`)
    const width = Math.max(...Object.keys(result.figures).map((k) => k.length), 10)
    for (const [key, value] of Object.entries(result.figures)) {
      yield* Console.log(`   ${key.padEnd(width)}  ${value}`)
    }
    for (const failure of result.failures) yield* Console.log(`   ✗ ${failure}`)
  })

/** Runs a process scenario on its own database; a crash of the scenario itself is a failure too. */
const scenario = (
  name: string,
  body: (database: string) => Effect.Effect<ScenarioOutcome, unknown, any>
) =>
  Effect.gen(function*() {
    const begin = Date.now()
    yield* Console.log(`\n[${elapsed()}] ${name}: starting`)
    const exit = yield* Effect.exit(withDatabase(name.replace(/-/g, "_"), body) as Effect.Effect<
      ScenarioOutcome,
      unknown,
      PgClient.PgClient
    >)
    const seconds = (Date.now() - begin) / 1000
    const result: ScenarioResult = Exit.isSuccess(exit)
      ? {
        name,
        passed: exit.value.failures.length === 0,
        seconds,
        figures: exit.value.figures,
        failures: exit.value.failures
      }
      : { name, passed: false, seconds, figures: {}, failures: [`the scenario crashed: ${describeCause(exit.cause)}`] }
    if (!result.passed) {
      // The tail of the worker logs of this scenario (the last few processes).
      for (const worker of spawnedSince(begin).slice(-6)) {
        yield* Console.log(`   --- ${worker.name} (last lines of ${worker.logFile})\n${worker.tail(15)}`)
      }
    }
    yield* printFigures(result)
    return result
  })

const describeCause = (cause: Cause.Cause<unknown>) => {
  const text = Cause.pretty(cause)
  return text.length > 2000 ? text.slice(0, 2000) + "..." : text
}

/** The vitest chaos suites as a child process; their figures come back through a JSON-lines file. */
const vitest = Effect.gen(function*() {
  const begin = Date.now()
  const figuresFile = join(logDir, "vitest-figures.jsonl")
  yield* Console.log(`\n[${elapsed()}] vitest: test/chaos/*.chaos.ts`)
  const code = yield* Effect.async<number>((resume) => {
    const child = spawn(
      process.execPath,
      [join(root, "node_modules/vitest/vitest.mjs"), "run", "-c", "vitest.chaos.config.ts"],
      {
        cwd: root,
        stdio: "inherit",
        env: { ...process.env, CHAOS_FIGURES_FILE: figuresFile, CHAOS_DATABASE_URL: serverUrl }
      }
    )
    child.on("exit", (code) => resume(Effect.succeed(code ?? 1)))
    return Effect.sync(() => child.kill("SIGKILL"))
  })
  const figures: Record<string, number | string | boolean> = {}
  if (existsSync(figuresFile)) {
    for (const line of readFileSync(figuresFile, "utf8").split("\n")) {
      if (line.trim() === "") continue
      const entry = JSON.parse(line) as { readonly test: string; readonly figures: Record<string, number | string> }
      for (const [key, value] of Object.entries(entry.figures)) figures[`${entry.test}.${key}`] = value
    }
  }
  const result: ScenarioResult = {
    name: "vitest (races, bad input, property)",
    passed: code === 0,
    seconds: (Date.now() - begin) / 1000,
    figures,
    failures: code === 0 ? [] : [`vitest exited with code ${code} (see its output above)`]
  }
  yield* printFigures(result)
  return result
})

const program = Effect.gen(function*() {
  const begin = Date.now()
  yield* Console.log(
    `ironflow chaos run ${runId} (${long ? "--long" : "default"} mode, db outage by ${outageMode}) on ${
      new URL(serverUrl).host
    }; logs in ${logDir}`
  )
  const results: Array<ScenarioResult> = []
  if (only.has("storm")) {
    results.push(
      yield* scenario("storm", (database) =>
        Storm.run({
          workflows: args.number("workflows", long ? 10_000 : 3000),
          processes: 3,
          killEveryMs: args.number("kill-every-ms", 2000),
          leaseMs: 3000,
          logDir,
          database,
          url: databaseUrl(database)
        }))
    )
  }
  if (only.has("once")) {
    results.push(
      yield* scenario("exactly-once", (database) =>
        ExactlyOnce.run({
          instances: args.number("once-instances", long ? 1500 : 300),
          effectsPerInstance: 5,
          processes: 3,
          killAtCommit: args.number("kill-at-commit", 0.25),
          logDir,
          url: databaseUrl(database)
        }))
    )
  }
  if (only.has("outage")) {
    results.push(
      yield* scenario("outage", (database) =>
        Outage.run({
          mode: outageMode,
          workflows: args.number("outage-workflows", long ? 3000 : 1200),
          outageSeconds: args.number("outage-seconds", long ? 60 : 10),
          logDir,
          database
        }))
    )
  }
  if (only.has("sigterm")) {
    results.push(
      yield* scenario(
        "sigterm",
        (database) => Sigterm.run({ workflows: 150, shutdownTimeoutMs: 5000, logDir, url: databaseUrl(database) })
      )
    )
  }
  if (only.has("lease")) {
    results.push(
      yield* scenario(
        "lease-expiry",
        (database) => LeaseExpiry.run({ workflows: 60, leaseMs: 3000, logDir, url: databaseUrl(database) })
      )
    )
  }
  if (only.has("skew")) {
    results.push(
      yield* scenario("clock-skew", (database) => ClockSkew.run({ workflows: 40, logDir, url: databaseUrl(database) }))
    )
  }
  if (only.has("schedules")) {
    results.push(
      yield* scenario("schedules", (database) =>
        Schedules.run({
          processes: 3,
          windowSeconds: args.number("schedule-seconds", long ? 120 : 30),
          killEveryMs: args.number("schedule-kill-every-ms", 1500),
          killAtCommit: 0.1,
          logDir,
          url: databaseUrl(database)
        }))
    )
  }
  if (only.has("limits")) {
    results.push(
      yield* scenario("limits", (database) =>
        Limits.run({
          workflows: args.number("limits-workflows", long ? 2000 : 400),
          processes: 3,
          killEveryMs: args.number("limits-kill-every-ms", 1500),
          // Short: a killed process's slots stay taken until its leases expire, and the hot key waits for them.
          leaseMs: 2000,
          logDir,
          url: databaseUrl(database)
        }))
    )
  }
  if (only.has("vitest")) results.push(yield* vitest)

  const passed = results.every((r) => r.passed)
  const seconds = (Date.now() - begin) / 1000
  const report = {
    date: new Date().toISOString(),
    runId,
    mode: long ? "long" : "default",
    dbOutage: outageMode,
    passed,
    seconds: Number(seconds.toFixed(1)),
    machine: {
      cpus: cpus().length,
      memoryGb: Number((totalmem() / 2 ** 30).toFixed(1)),
      node: process.version,
      loadAverageAtEnd: loadavg().map((l) => Number(l.toFixed(2)))
    },
    scenarios: Object.fromEntries(
      results.map((r) => [r.name, {
        passed: r.passed,
        seconds: Number(r.seconds.toFixed(1)),
        figures: r.figures,
        failures: r.failures
      }])
    )
  }
  writeFileSync(join(here, "last-run.json"), JSON.stringify(report, null, 2) + "\n")
  yield* Console.log(`\n══ chaos run ${passed ? "PASSED" : "FAILED"} in ${seconds.toFixed(1)} s`)
  for (const r of results) yield* Console.log(`   ${r.passed ? "✓" : "✗"} ${r.name} (${r.seconds.toFixed(1)} s)`)
  yield* Console.log(`   figures: scratchpad/chaos/last-run.json; worker logs: ${logDir}`)
  if (passed && !args.flag("keep-logs")) rmSync(logDir, { recursive: true, force: true })
  if (!passed) return yield* Effect.fail(new Error("chaos run failed"))
})

program.pipe(
  Effect.provide(Layer.orDie(PgClient.layer({ url: Redacted.make(serverUrl), maxConnections: 2 }))),
  NodeRuntime.runMain
)
