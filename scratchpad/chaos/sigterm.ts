/**
 * Scenario 3, SIGTERM under load: one process runs slow handlers (1 s) with
 * long leases (30 s); SIGTERM arrives while handlers are in flight. They must
 * finish and be acked within `shutdownTimeout`, the process must exit 0 with
 * no lease left held, and a new process must pick up the remaining work at
 * once (not after the 30 s leases).
 */
import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import { makeIds, say, startWorkflows, waitFor } from "./common.js"
import { spawnWorker, type Worker } from "./processes.js"
import type { ScenarioOutcome } from "./scenario.js"
import { countTerminal, verify } from "./verify.js"

export interface SigtermOptions {
  readonly workflows: number
  readonly shutdownTimeoutMs: number
  readonly logDir: string
  readonly url: string
}

export const run = (options: SigtermOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const name = "sigterm"
    const failures: Array<string> = []
    const ids = makeIds("sigterm", options.workflows)
    const spawn = (workerId: string) =>
      spawnWorker(workerId, options.logDir, {
        url: options.url,
        workerId,
        maxConnections: 8,
        effectLockMs: 30_000,
        timerLockMs: 30_000,
        heartbeatMs: 1000,
        shutdownTimeoutMs: options.shutdownTimeoutMs,
        handlerConcurrency: 32,
        claimBatchSize: 32,
        delayMs: [1000, 1000]
      })
    const workers: Array<Worker> = []
    const first = yield* spawn("sigterm-a")
    workers.push(first)
    yield* first.ready.pipe(Effect.timeout("60 seconds"))
    yield* startWorkflows(ids)
    yield* say(name, `${ids.length} workflows started; waiting for handlers in flight`)

    const inFlight = (worker: string) =>
      sql<{ effect_id: string }>`
        SELECT effect_id::text AS effect_id FROM chaos.invocations WHERE worker = ${worker} AND finished_at IS NULL`
    yield* waitFor(
      "handlers in flight",
      Effect.map(inFlight(first.workerId), (rows) => (rows.length >= 16 ? Option.some(true) : Option.none())),
      { timeout: "60 seconds", interval: "50 millis" }
    )
    yield* Effect.sleep("1500 millis") // mid-handler: some started 1.5 s ago and finished, others just started
    const running = yield* inFlight(first.workerId)
    const signalled = Date.now()
    first.signal("SIGTERM")
    const exit = yield* first.exited
    const exitSeconds = (exit.at - signalled) / 1000
    yield* say(name, `${running.length} handler(s) in flight at SIGTERM; exited ${exit.code} after ${exitSeconds} s`)
    if (exit.code !== 0) failures.push(`exit code ${exit.code ?? exit.signal} on SIGTERM, expected 0`)
    const limit = options.shutdownTimeoutMs / 1000 + 3
    if (exitSeconds > limit) {
      failures.push(`exited ${exitSeconds} s after SIGTERM, over shutdownTimeout + 3 s = ${limit} s`)
    }

    const [leases] = yield* sql<{ held: unknown; live: unknown }>`
      SELECT (SELECT count(*) FROM ironflow.outbox WHERE locked_by LIKE 'sigterm-a-%' AND processed_at IS NULL)
        + (SELECT count(*) FROM ironflow.timers WHERE locked_by LIKE 'sigterm-a-%' AND processed_at IS NULL) AS held,
        (SELECT count(*) FROM ironflow.workers WHERE worker_id = 'sigterm-a') AS live`
    if (Number(leases.held) > 0) failures.push(`${leases.held} lease(s) of the stopped process still held`)
    if (Number(leases.live) > 0) failures.push("the stopped process is still announced in ironflow.workers")

    // The handlers in flight at SIGTERM finished, and the stopping process acked them itself.
    const runningIds = running.map((r) => r.effect_id)
    const [drain] = yield* sql<{ unfinished: unknown; acked: unknown }>`
      SELECT
        (SELECT count(*) FROM chaos.invocations WHERE worker = 'sigterm-a' AND effect_id = ANY(${runningIds}::uuid[])
          AND (finished_at IS NULL OR finished_at > ${new Date(exit.at)})) AS unfinished,
        (SELECT count(DISTINCT row_id) FROM chaos.transitions WHERE what = 'processed'
          AND row_id = ANY(${runningIds}::uuid[]) AND old_locked_by LIKE 'sigterm-a-%') AS acked`
    if (Number(drain.unfinished) > 0) failures.push(`${drain.unfinished} in-flight handler(s) did not finish`)
    if (Number(drain.acked) !== running.length) {
      failures.push(`${drain.acked} of the ${running.length} in-flight effects were acked by the stopping process`)
    }
    const doneAtStop = (yield* countTerminal).terminal

    // A new process picks up the rest at once.
    const second = yield* spawn("sigterm-b")
    workers.push(second)
    const ready = yield* second.ready.pipe(Effect.timeout("60 seconds"))
    const firstPickup = yield* waitFor(
      "the new process's first pickup",
      Effect.map(
        sql<{ at: Date | null }>`SELECT min(started_at) AS at FROM chaos.invocations WHERE worker = 'sigterm-b'`,
        ([row]) => Option.fromNullable(row.at)
      ),
      { timeout: "60 seconds", interval: "20 millis" }
    ).pipe(Effect.map((at) => new Date(at).getTime()))
    const pickupAfterReady = Math.max(0, firstPickup - ready) / 1000
    const pickupAfterSpawn = (firstPickup - second.spawnedAt) / 1000
    yield* say(
      name,
      `new process ready after ${(ready - second.spawnedAt) / 1000} s, first pickup ${pickupAfterReady} s later`
    )
    if (pickupAfterReady > 3) failures.push(`the new process took ${pickupAfterReady} s after start to pick up work`)

    yield* waitFor(
      "every workflow to be terminal",
      Effect.map(countTerminal, ({ terminal }) => terminal === ids.length ? Option.some(true) : Option.none()),
      { timeout: "120 seconds", interval: "250 millis" }
    )
    yield* waitFor(
      "no pending effect or timer",
      Effect.map(
        sql<{ n: unknown }>`SELECT (SELECT count(*) FROM ironflow.outbox WHERE processed_at IS NULL)
          + (SELECT count(*) FROM ironflow.timers WHERE processed_at IS NULL) AS n`,
        ([row]) => Number(row.n) === 0 ? Option.some(true) : Option.none()
      ),
      { timeout: "30 seconds", interval: "250 millis" }
    ).pipe(Effect.catchAll((error) => Effect.sync(() => failures.push(error.message))))
    second.signal("SIGTERM")
    const secondExit = yield* second.exited
    if (secondExit.code !== 0) failures.push(`the second process exited with ${secondExit.code ?? secondExit.signal}`)

    const verification = yield* verify(ids)
    failures.push(...verification.failures)
    // A graceful stop re-runs nothing: every effect ran exactly once.
    if (verification.figures.effectsRunMoreThanOnce > 0) {
      failures.push(`${verification.figures.effectsRunMoreThanOnce} effect(s) ran twice across the graceful stop`)
    }
    const outcome: ScenarioOutcome = {
      figures: {
        workflows: ids.length,
        handlersInFlightAtSigterm: running.length,
        inFlightHandlersAckedBeforeExit: Number(drain.acked),
        exitCode: exit.code ?? -1,
        secondsToExit: exitSeconds,
        shutdownTimeoutSeconds: options.shutdownTimeoutMs / 1000,
        leaseSeconds: 30,
        leasesLeftHeld: Number(leases.held),
        terminalAtStop: doneAtStop,
        newProcessSecondsToReady: (ready - second.spawnedAt) / 1000,
        newProcessSecondsFromReadyToFirstPickup: pickupAfterReady,
        newProcessSecondsFromSpawnToFirstPickup: pickupAfterSpawn,
        duplicateHandlerInvocations: verification.figures.duplicateHandlerInvocations,
        doubledEvents: verification.figures.doubledEvents,
        missingEvents: verification.figures.missingEvents,
        terminal: verification.figures.terminal
      },
      failures,
      workers
    }
    return outcome
  })
