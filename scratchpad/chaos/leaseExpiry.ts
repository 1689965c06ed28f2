/**
 * Scenario 4 (a race of issue item 4 that needs real processes): a lease
 * expires while its handler still runs. Process A is frozen with SIGSTOP while
 * its handlers are in flight (as a long GC pause or a stalled VM would);
 * its leases expire and process B takes the rows over. When A resumes
 * (SIGCONT), its handlers finish late: the late results are rejected by the
 * workflow and the late acks change nothing (each row is marked processed
 * once, by B).
 */
import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import { makeIds, say, startWorkflows, waitFor } from "./common.js"
import { spawnWorker, type Worker } from "./processes.js"
import type { ScenarioOutcome } from "./scenario.js"
import { countTerminal, verify } from "./verify.js"

export interface LeaseExpiryOptions {
  readonly workflows: number
  readonly leaseMs: number
  readonly logDir: string
  readonly url: string
}

export const run = (options: LeaseExpiryOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const name = "lease-expiry"
    const failures: Array<string> = []
    const ids = makeIds("lease", options.workflows)
    const spawn = (workerId: string) =>
      spawnWorker(workerId, options.logDir, {
        url: options.url,
        workerId,
        maxConnections: 5,
        effectLockMs: options.leaseMs,
        timerLockMs: options.leaseMs,
        heartbeatMs: 1000,
        shutdownTimeoutMs: 5000,
        handlerConcurrency: 8,
        claimBatchSize: 8,
        delayMs: [1500, 1500]
      })
    const workers: Array<Worker> = [yield* spawn("lease-a"), yield* spawn("lease-b")]
    const [a, b] = workers
    yield* Effect.forEach(workers, (w) => w.ready, { concurrency: "unbounded", discard: true }).pipe(
      Effect.timeout("60 seconds")
    )
    yield* startWorkflows(ids)
    yield* waitFor(
      "handlers of A in flight",
      Effect.map(
        sql<
          { n: unknown }
        >`SELECT count(*) AS n FROM chaos.invocations WHERE worker = 'lease-a' AND finished_at IS NULL`,
        ([row]) => Number(row.n) >= 4 ? Option.some(true) : Option.none()
      ),
      { timeout: "60 seconds", interval: "50 millis" }
    )
    const frozen = (yield* sql<{ effect_id: string }>`
      SELECT effect_id::text AS effect_id FROM chaos.invocations WHERE worker = 'lease-a' AND finished_at IS NULL`)
      .map((r) => r.effect_id)
    const stopped = Date.now()
    a.signal("SIGSTOP")
    const pause = options.leaseMs + 4000
    yield* say(name, `SIGSTOP to A with ${frozen.length} handler(s) in flight; resuming in ${pause / 1000} s`)
    yield* Effect.sleep(pause)
    a.signal("SIGCONT")
    const resumed = Date.now()

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

    // The rows A held when frozen: taken over by B after the lease expired, A's handler finished late.
    const rows = yield* sql<
      { effect_id: string; by_b: boolean; a_finished: Date | null; completions: unknown; acked_by: string | null }
    >`
      SELECT f.id::text AS effect_id,
        EXISTS (SELECT 1 FROM chaos.invocations v WHERE v.effect_id = f.id AND v.worker = 'lease-b'
          AND v.started_at > ${new Date(stopped)}) AS by_b,
        (SELECT max(finished_at) FROM chaos.invocations v WHERE v.effect_id = f.id AND v.worker = 'lease-a') AS a_finished,
        (SELECT count(*) FROM chaos.transitions t WHERE t.row_id = f.id AND t.what = 'processed') AS completions,
        (SELECT min(old_locked_by) FROM chaos.transitions t WHERE t.row_id = f.id AND t.what = 'processed') AS acked_by
      FROM unnest(${frozen}::uuid[]) AS f(id)`
    const takenOver = rows.filter((r) => r.by_b)
    const lateFinishes = takenOver.filter((r) => r.a_finished !== null && new Date(r.a_finished).getTime() >= resumed)
    if (takenOver.length === 0) failures.push("no row was taken over after A's leases expired: the race did not happen")
    for (const row of takenOver) {
      if (Number(row.completions) !== 1) failures.push(`row ${row.effect_id} marked processed ${row.completions} times`)
      else if (!String(row.acked_by).startsWith("lease-b-")) {
        failures.push(`row ${row.effect_id} taken over by B was acked by ${row.acked_by} (a stale ack counted)`)
      }
    }
    if (lateFinishes.length === 0 && takenOver.length > 0) {
      failures.push("no handler of A finished after SIGCONT: the late ack was not exercised")
    }

    for (const worker of workers) worker.signal("SIGTERM")
    const exits = yield* Effect.forEach(workers, (w) => w.exited, { concurrency: "unbounded" })
    for (const [i, exit] of exits.entries()) {
      if (exit.code !== 0) failures.push(`${workers[i].name} exited with ${exit.code ?? exit.signal} on SIGTERM`)
    }
    const verification = yield* verify(ids)
    failures.push(...verification.failures)
    yield* say(name, `${takenOver.length} row(s) taken over by B, ${lateFinishes.length} late finish(es) by A`)
    const outcome: ScenarioOutcome = {
      figures: {
        workflows: ids.length,
        leaseSeconds: options.leaseMs / 1000,
        stoppedSeconds: (resumed - stopped) / 1000,
        handlersFrozen: frozen.length,
        rowsTakenOverAfterLeaseExpiry: takenOver.length,
        lateHandlerFinishesAfterResume: lateFinishes.length,
        lateAcksThatChangedSomething: takenOver.filter((r) => !String(r.acked_by).startsWith("lease-b-")).length,
        duplicateHandlerInvocations: verification.figures.duplicateHandlerInvocations,
        overlappingRunsOfOneEffect: verification.figures.overlappingRuns,
        doubledEvents: verification.figures.doubledEvents,
        doubledCompletions: verification.figures.doubledCompletions,
        missingEvents: verification.figures.missingEvents,
        terminal: verification.figures.terminal
      },
      failures,
      workers: [a, b]
    }
    return outcome
  })
