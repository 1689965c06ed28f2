/**
 * Scenario 2, database restart: two runtime processes work through the
 * workflows; in the middle of the load the database goes away and comes back.
 *
 * - `proxy` (default): the workers connect through an in-process TCP proxy;
 *   the outage destroys every proxied connection and refuses new ones for N
 *   seconds. The shared PostgreSQL server is never touched.
 * - `restart`: the workers connect directly and the real server is restarted
 *   with `pg_ctlcluster ... main restart` (for machines where that is fine).
 *
 * The runtime must log, back off, reconnect and finish every workflow without
 * a process exiting, and without losing or doubling anything.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Option } from "effect"
import { execFile } from "node:child_process"
import { workflowType } from "./ChaosWorkflow.js"
import { databaseUrl, makeIds, percentile, resilient, say, startWorkflows, waitFor } from "./common.js"
import { spawnWorker, type Worker } from "./processes.js"
import * as Proxy from "./proxy.js"
import type { ScenarioOutcome } from "./scenario.js"
import { countTerminal, verify } from "./verify.js"

export interface OutageOptions {
  readonly mode: "proxy" | "restart"
  readonly workflows: number
  readonly outageSeconds: number
  readonly logDir: string
  readonly database: string
}

const restartCommand = "pg_ctlcluster --skip-systemctl-redirect \"$(ls /etc/postgresql | head -n 1)\" main restart"

const restartPostgres = Effect.async<{ readonly ok: boolean; readonly output: string }>((resume) => {
  execFile(
    "bash",
    ["-c", restartCommand],
    { timeout: 120_000 },
    (error, stdout, stderr) => resume(Effect.succeed({ ok: error === null, output: `${stdout}${stderr}`.trim() }))
  )
})

/**
 * Pickup latency across processes: `count` single workflows started by the
 * driver at random moments (300-600 ms apart); for each, the time from its
 * effects' commit to the first handler invocation. The workers poll only every
 * 5 s, so anything much faster came from the NOTIFY wake-up.
 */
const probePickup = (phase: string, count: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const ids = makeIds(`outage-probe-${phase}`, count)
    for (const id of ids) {
      yield* startWorkflows([id])
      yield* Effect.sleep(300 + Math.floor(Math.random() * 300))
    }
    yield* waitFor(`the ${phase} probes to be picked up`, allTerminal(ids), { timeout: "60 seconds" })
    const rows = yield* sql<{ ms: unknown }>`
      SELECT min(extract(epoch FROM (v.started_at - o.created_at)) * 1000) AS ms
      FROM ironflow.outbox o JOIN chaos.invocations v ON v.effect_id = o.id
      WHERE o.workflow_type = ${workflowType} AND o.workflow_id = ANY(${ids}::text[])
      GROUP BY o.workflow_id`
    return { ids, latencies: rows.map((row) => Number(row.ms)) }
  })

const pollMs = 5000
const wakeupLimitMs = 750

export const run = (options: OutageOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const name = "outage"
    const failures: Array<string> = []
    const ids = makeIds("outage", options.workflows)

    const proxy = options.mode === "proxy" ? Option.some(yield* Proxy.make(targetOf())) : Option.none()
    const url = Option.match(proxy, {
      onNone: () => databaseUrl(options.database),
      onSome: (p) => databaseUrl(options.database, { port: p.port })
    })
    const workers: Array<Worker> = []
    for (const slot of [1, 2]) {
      const workerId = `outage-w${slot}`
      workers.push(
        yield* spawnWorker(workerId, options.logDir, {
          url,
          workerId,
          maxConnections: 5,
          effectLockMs: 3000,
          timerLockMs: 3000,
          heartbeatMs: 1000,
          shutdownTimeoutMs: 5000,
          // Polling is only the fallback: pickups in ~10 ms need the NOTIFY wake-ups.
          effectPollMs: pollMs,
          timerPollMs: 1000,
          delayMs: [5, 25],
          retry: { maxAttempts: 10, baseMs: 200, maxMs: 2000 }
        })
      )
    }
    yield* Effect.forEach(workers, (w) => w.ready, { concurrency: "unbounded", discard: true }).pipe(
      Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error("workers not ready in 60 s") })
    )

    // Pickup latency across processes before the outage.
    const before = yield* probePickup("before", 10)
    const probeBefore = before.ids

    yield* say(name, `starting ${ids.length} workflows; ${options.mode} outage at 25 %`)
    const begin = Date.now()
    yield* startWorkflows(ids)
    yield* waitFor(
      "25 % of the workflows to be terminal",
      Effect.map(countTerminal, ({ terminal }) =>
        terminal - probeBefore.length >= ids.length / 4 ? Option.some(true) : Option.none()),
      { timeout: "120 seconds", interval: "100 millis" }
    )
    const atOutage = (yield* countTerminal).terminal - probeBefore.length
    const outageStart = Date.now()
    let killedConnections = 0
    let restartOutput = ""
    if (Option.isSome(proxy)) {
      yield* say(name, `outage: killing every connection, refusing new ones for ${options.outageSeconds} s`)
      killedConnections = (yield* proxy.value.outage(options.outageSeconds * 1000)).killed
    } else {
      yield* say(name, `restarting PostgreSQL: ${restartCommand}`)
      const restart = yield* restartPostgres
      restartOutput = restart.output
      if (!restart.ok) {
        failures.push(`the restart command failed: ${restart.output}`)
      }
    }
    const restored = Date.now()
    const alive = workers.filter((w) =>
      w.isAlive()
    ).length
    yield* say(name, `database back after ${((restored - outageStart) / 1000).toFixed(1)} s; ${alive}/2 workers alive`)

    // Recovery: the first handler invocation that starts after the database came back.
    const firstAfter = yield* waitFor(
      "a handler invocation after the outage",
      resilient(
        sql<{ at: Date | null }>`SELECT min(started_at) AS at FROM chaos.invocations WHERE started_at > ${new Date(
          restored
        )}`
      ).pipe(Effect.map(([row]) => Option.fromNullable(row.at))),
      { timeout: "180 seconds", interval: "100 millis" }
    ).pipe(Effect.map((at) => new Date(at).getTime()))
    yield* waitFor(
      "every workflow to be terminal",
      allTerminal(ids),
      { timeout: `${120 + options.outageSeconds * 2} seconds`, interval: "250 millis" }
    )
    const allDone = Date.now()
    yield* say(name, `all terminal ${((allDone - restored) / 1000).toFixed(1)} s after the database came back`)

    // Pickup latency across processes after the outage: the wake-ups must have reconnected too.
    const after = yield* probePickup("after", 10)
    const probeAfter = after.ids

    yield* waitFor(
      "no pending effect or timer",
      Effect.map(
        sql<{ n: unknown }>`SELECT (SELECT count(*) FROM ironflow.outbox WHERE processed_at IS NULL)
          + (SELECT count(*) FROM ironflow.timers WHERE processed_at IS NULL) AS n`,
        ([row]) => Number(row.n) === 0 ? Option.some(true) : Option.none()
      ),
      { timeout: "30 seconds", interval: "250 millis" }
    ).pipe(Effect.catchAll((error) => Effect.sync(() => failures.push(error.message))))

    const exitedEarly = workers.filter((w) => !w.isAlive())
    if (exitedEarly.length > 0) {
      failures.push(`worker(s) exited during the outage: ${exitedEarly.map((w) => w.name).join(", ")}`)
    }
    const warnings = workers.reduce((sum, w) => sum + w.countLog(/\b(WARN|ERROR)\b/), 0)
    const backoffs = workers.flatMap((w) => w.matchLog(/claim failed; retrying in (.+)$/)).map((m) => millisOf(m[1]))
    const longestBackoff = backoffs.length === 0 ? 0 : Math.max(...backoffs) / 1000
    if (warnings === 0) failures.push("the workers logged nothing about the outage")
    for (const worker of workers) worker.signal("SIGTERM")
    const exits = yield* Effect.forEach(workers, (w) => w.exited, { concurrency: "unbounded" })
    for (const [i, exit] of exits.entries()) {
      if (exit.code !== 0) failures.push(`${workers[i].name} exited with ${exit.code ?? exit.signal} on SIGTERM`)
    }

    const verification = yield* verify([...probeBefore, ...ids, ...probeAfter])
    failures.push(...verification.failures)
    if (verification.figures.deadLetteredEver > 0) {
      failures.push(
        `${verification.figures.deadLetteredEver} row(s) dead-lettered, e.g. ${
          JSON.stringify(verification.deadLettered[0])
        }`
      )
    }
    const p50Before = percentile(before.latencies, 50)
    const p50After = percentile(after.latencies, 50)
    if (p50Before > wakeupLimitMs) {
      failures.push(
        `cross-process wake-ups do not work: pickup p50 ${
          p50Before.toFixed(0)
        } ms before the outage (workers poll every ${pollMs} ms; a NOTIFY wake-up takes milliseconds)`
      )
    }
    if (p50After > wakeupLimitMs) {
      failures.push(
        `cross-process wake-ups did not come back after the outage: pickup p50 ${
          p50After.toFixed(0)
        } ms (workers poll every ${pollMs} ms)`
      )
    }
    const outcome: ScenarioOutcome = {
      figures: {
        mode: options.mode,
        workflows: ids.length + probeBefore.length + probeAfter.length,
        outageSeconds: Number(((restored - outageStart) / 1000).toFixed(1)),
        terminalAtOutage: atOutage,
        connectionsKilled: killedConnections,
        proxiedConnectionsAccepted: Option.match(proxy, { onNone: () => 0, onSome: (p) => p.stats().accepted }),
        workersAliveAfterOutage: alive,
        secondsToRecover: Number(((firstAfter - restored) / 1000).toFixed(2)),
        secondsToFinishAfterOutage: Number(((allDone - restored) / 1000).toFixed(1)),
        totalSeconds: Number(((allDone - begin) / 1000).toFixed(1)),
        workerWarningsLogged: warnings,
        claimRetriesLogged: backoffs.length,
        longestClaimBackoffSeconds: longestBackoff,
        workerPollIntervalMs: pollMs,
        crossProcessPickupP50MsBeforeOutage: Number(p50Before.toFixed(1)),
        crossProcessPickupP50MsAfterOutage: Number(p50After.toFixed(1)),
        duplicateHandlerInvocations: verification.figures.duplicateHandlerInvocations,
        overlappingRunsOfOneEffect: verification.figures.overlappingRuns,
        doubledEvents: verification.figures.doubledEvents,
        missingEvents: verification.figures.missingEvents,
        doubledCompletions: verification.figures.doubledCompletions,
        deadLettered: verification.figures.deadLetteredEver,
        terminal: verification.figures.terminal,
        ...(restartOutput === "" ? {} : { restartOutput })
      },
      failures,
      workers
    }
    return outcome
  })

const targetOf = () => {
  const url = new URL(process.env.CHAOS_DATABASE_URL ?? process.env.DATABASE_URL ?? "postgres://127.0.0.1:5432")
  return { host: url.hostname === "localhost" ? "127.0.0.1" : url.hostname, port: Number(url.port || 5432) }
}

/** Milliseconds of a `Duration.format` rendering such as "6s 400ms" or "1m 2s". */
const millisOf = (text: string) => {
  let total = 0
  for (const [, value, unit] of text.matchAll(/(\d+)(ms|s|m)\b/g)) {
    total += Number(value) * (unit === "ms" ? 1 : unit === "s" ? 1000 : 60_000)
  }
  return total
}

const allTerminal = (ids: ReadonlyArray<string>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    resilient(sql<{ n: unknown }>`
      SELECT count(*) AS n FROM ironflow.workflow_instances
      WHERE workflow_type = ${workflowType} AND workflow_id = ANY(${ids}::text[]) AND completed_at IS NOT NULL`).pipe(
      Effect.map(([row]) => Number(row.n) === ids.length ? Option.some(true) : Option.none())
    ))
