/**
 * Clock skew (issue #17, item 3) with real processes: A's clock is right, B's
 * runs 3 s ahead (within the 5 s bound), C's 10 minutes ahead. Leases are
 * 2 s and renewed every 0.5 s while handlers run 1.5 to 3 s, so read on B's
 * own clock every lease A holds would look expired. Passes when no effect
 * ran in two processes at once, C ran nothing and announced that it is not
 * claiming, B did share the work, and nothing was lost or doubled.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import { makeIds, say, startWorkflows, waitFor } from "./common.js"
import { spawnWorker, type Worker } from "./processes.js"
import type { ScenarioOutcome } from "./scenario.js"
import { countTerminal, verify } from "./verify.js"

export interface ClockSkewOptions {
  readonly workflows: number
  readonly logDir: string
  readonly url: string
}

export const run = (options: ClockSkewOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const name = "clock-skew"
    const failures: Array<string> = []
    const ids = makeIds("skew", options.workflows)
    const spawn = (workerId: string, clockSkewMs: number) =>
      spawnWorker(workerId, options.logDir, {
        url: options.url,
        workerId,
        maxConnections: 5,
        effectLockMs: 2000,
        timerLockMs: 2000,
        heartbeatMs: 500,
        shutdownTimeoutMs: 5000,
        handlerConcurrency: 8,
        claimBatchSize: 8,
        delayMs: [1500, 3000],
        clockSkewMs
      })
    const workers: Array<Worker> = [
      yield* spawn("skew-a", 0),
      yield* spawn("skew-b", 3000),
      yield* spawn("skew-c", 10 * 60 * 1000)
    ]
    yield* Effect.forEach(workers, (w) => w.ready, { concurrency: "unbounded", discard: true }).pipe(
      Effect.timeout("60 seconds")
    )
    const started = Date.now()
    yield* startWorkflows(ids)
    yield* waitFor(
      "every workflow to be terminal",
      Effect.map(countTerminal, ({ terminal }) => terminal === ids.length ? Option.some(true) : Option.none()),
      { timeout: "240 seconds", interval: "250 millis" }
    ).pipe(Effect.catchAll((error) => Effect.sync(() => failures.push(error.message))))
    const seconds = (Date.now() - started) / 1000

    const perWorker = yield* sql<{ worker: string; n: unknown }>`
      SELECT worker, count(*) AS n FROM chaos.invocations GROUP BY worker`
    const invocations = (worker: string) => Number(perWorker.find((r) => r.worker === worker)?.n ?? 0)
    const paused = yield* sql<{ worker_id: string; claims_paused: string | null; clock_offset_ms: unknown }>`
      SELECT worker_id, claims_paused, clock_offset_ms FROM ironflow.workers ORDER BY worker_id`
    const c = paused.find((w) => w.worker_id.startsWith("skew-c"))
    const b = paused.find((w) => w.worker_id.startsWith("skew-b"))
    if (invocations("skew-c") > 0) failures.push(`C (10 minutes ahead) ran ${invocations("skew-c")} handler(s)`)
    if (c === undefined || c.claims_paused === null) failures.push("C did not announce that its claims are paused")
    if (invocations("skew-b") === 0) failures.push("B (3 s ahead) ran nothing: the race did not happen")
    if (b !== undefined && b.claims_paused !== null) failures.push(`B paused its claims: ${b.claims_paused}`)

    for (const worker of workers) worker.signal("SIGTERM")
    const exits = yield* Effect.forEach(workers, (w) => w.exited, { concurrency: "unbounded" })
    for (const [i, exit] of exits.entries()) {
      if (exit.code !== 0) failures.push(`${workers[i].name} exited with ${exit.code ?? exit.signal} on SIGTERM`)
    }
    const verification = yield* verify(ids)
    failures.push(...verification.failures)
    if (verification.figures.overlappingRuns > 0) {
      failures.push(
        `${verification.figures.overlappingRuns} effect(s) ran in two processes at once (a lease read on a skewed clock)`
      )
    }
    yield* say(
      name,
      `A ran ${invocations("skew-a")}, B (+3 s) ${invocations("skew-b")}, C (+10 min) ${
        invocations("skew-c")
      } handler(s); ${verification.figures.overlappingRuns} overlapping run(s)`
    )
    const outcome: ScenarioOutcome = {
      figures: {
        workflows: ids.length,
        seconds,
        invocationsA: invocations("skew-a"),
        invocationsBThreeSecondsAhead: invocations("skew-b"),
        invocationsCTenMinutesAhead: invocations("skew-c"),
        measuredOffsetBMs: b === undefined ? "none" : Number(b.clock_offset_ms),
        measuredOffsetCMs: c === undefined ? "none" : Number(c.clock_offset_ms),
        overlappingRunsOfOneEffect: verification.figures.overlappingRuns,
        duplicateHandlerInvocations: verification.figures.duplicateHandlerInvocations,
        doubledEvents: verification.figures.doubledEvents,
        doubledCompletions: verification.figures.doubledCompletions,
        missingEvents: verification.figures.missingEvents,
        terminal: verification.figures.terminal
      },
      failures,
      workers
    }
    return outcome
  })
