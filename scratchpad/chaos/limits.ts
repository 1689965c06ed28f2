/**
 * Limits scenario (issue #14 item 3): runtime processes work through effects
 * whose handler declares a concurrency limit of 2 per key (8 keys, two of
 * them hot) while a killer SIGKILLs a random running process every
 * `killEveryMs` and its slot restarts it. Every run of the handler records
 * its start and end (database time) and process id. Passes when every effect
 * is processed, nothing was ever dead-lettered, processes demonstrably died,
 * no key ever had more than 2 runs at once across all processes, and the
 * hottest key did have 2 at once (a limit that serialized everything would
 * prove nothing).
 */
import { SqlClient } from "@effect/sql"
import { Effect, Fiber, Option } from "effect"
import * as ExecuteOutcome from "ironflow/ExecuteOutcome"
import * as WorkflowRegistry from "ironflow/WorkflowRegistry"
import * as WorkflowService from "ironflow/WorkflowService"
import { elapsed, makeIds, say, waitFor } from "./common.js"
import {
  LimitedHandler,
  limitedSchemaSql,
  limitedType,
  LimitedWorkflow,
  limitPerKey,
  runsTable,
  Start
} from "./LimitedWorkflow.js"
import { spawnWorker, type Worker } from "./processes.js"
import type { ScenarioOutcome } from "./scenario.js"

export interface LimitsOptions {
  readonly workflows: number
  readonly processes: number
  readonly killEveryMs: number
  readonly leaseMs: number
  readonly logDir: string
  readonly url: string
}

/**
 * Keys by share of the effects: k0 25 %, k1 15 % (hot), six cold ones at 10 %, the last with SQL and array
 * metacharacters. The hot key bounds the run (2 at a time, and its slots held by a killed process stay taken
 * until their leases expire), so its share sets the scenario's length.
 */
const keyPattern = ["k0", "k0", "k0", "k0", "k0", "k1", "k1", "k1", "k2", "k2", "k3", "k3", "k4", "k4", "k5", "k5"]
  .concat(["k6", "k6", `k7 'q' "ü" {a,b} \\`, `k7 'q' "ü" {a,b} \\`])
const keyOf = (i: number) => keyPattern[i % keyPattern.length]
const keyCount = new Set(keyPattern).size
const hottest = "k0"

// When the driver saw each process exit, in database time: an upper bound of its death (see the sweep).
const deathsTable = "chaos_limited_deaths"

export const run = (options: LimitsOptions) =>
  Effect.gen(function*() {
    const name = "limits"
    const sql = yield* SqlClient.SqlClient
    const runs = sql(runsTable)
    const deaths = sql(deathsTable)
    yield* sql.unsafe(limitedSchemaSql)
    yield* sql`CREATE TABLE ${deaths} (pid integer NOT NULL, worker text NOT NULL, died_by timestamptz NOT NULL)`
    // The driver's own registry: it writes the rows' limit names with them, as an application knowing the handler would.
    const registry = yield* WorkflowRegistry.make([LimitedHandler])
    const service = yield* WorkflowService.make.pipe(
      Effect.provideService(WorkflowRegistry.WorkflowRegistry, registry)
    )
    const failures: Array<string> = []
    const ids = makeIds("limits", options.workflows)

    let generation = 0
    let crashes = 0
    let stopping = false
    const workers: Array<Worker> = []
    const current: Array<Worker | undefined> = new Array(options.processes).fill(undefined)
    const ready = new Set<Worker>()
    const killed = new Set<number>()
    const finals: Array<{ readonly worker: Worker; readonly code: number | null; readonly signal: string | null }> = []
    const ownExits: Array<string> = []
    const spawn = (slot: number) => {
      const workerId = `limits-w${slot + 1}-g${++generation}`
      return spawnWorker(workerId, options.logDir, {
        url: options.url,
        workerId,
        limited: true,
        maxConnections: 4,
        effectLockMs: options.leaseMs,
        heartbeatMs: options.leaseMs / 4,
        effectPollMs: 100
      })
    }
    // A graceful stop, once per process: one still loading has no SIGTERM handler yet, so wait for it to run.
    const terminated = new Set<Worker>()
    const stop = (worker: Worker) =>
      Effect.gen(function*() {
        if (terminated.has(worker)) return
        terminated.add(worker)
        yield* Effect.ignore(Effect.timeout(worker.ready, "60 seconds"))
        worker.signal("SIGTERM")
      })
    // Each slot restarts its process whenever it dies, as a supervisor would, until the scenario stops.
    const supervise = (slot: number): Effect.Effect<void, Error, any> =>
      Effect.gen(function*() {
        while (!stopping) {
          const worker: Worker = yield* spawn(slot)
          workers.push(worker)
          current[slot] = worker
          // Spawned after the driver looked for the processes to stop: stop it here.
          if (stopping) yield* Effect.forkScoped(stop(worker))
          yield* Effect.fork(Effect.ignore(Effect.tap(worker.ready, () => Effect.sync(() => ready.add(worker)))))
          const exit = yield* worker.exited
          ready.delete(worker)
          yield* sql`INSERT INTO ${deaths} (pid, worker, died_by)
            VALUES (${worker.pid}, ${worker.workerId}, clock_timestamp())`
          if (killed.has(worker.pid)) {
            if (exit.signal === "SIGKILL") crashes++
            continue
          }
          if (stopping) finals.push({ worker, code: exit.code, signal: exit.signal })
          else ownExits.push(`${worker.name} (code ${exit.code}, signal ${exit.signal})`)
        }
      })
    const supervisors = yield* Effect.forEach(
      Array.from({ length: options.processes }, (_, i) => i),
      (slot) => Effect.forkScoped(supervise(slot))
    )
    yield* waitFor(
      "the first worker ready",
      Effect.sync(() => (ready.size > 0 ? Option.some(true) : Option.none())),
      { timeout: "60 seconds", interval: "100 millis" }
    )
    yield* say(
      name,
      `starting ${ids.length} workflows over ${keyCount} keys (limit ${limitPerKey} per key), SIGKILL every ${options.killEveryMs} ms`
    )
    const begin = Date.now()
    let rejected = 0
    const starting = yield* Effect.forEach(
      ids,
      (id, i) =>
        Effect.tap(
          service.execute(LimitedWorkflow, new Start({ id, key: keyOf(i) })),
          (outcome) =>
            Effect.sync(() => {
              if (!ExecuteOutcome.isAccepted(outcome)) rejected++
            })
        ),
      { concurrency: 8, discard: true }
    ).pipe(Effect.fork)

    const pending = Effect.map(
      sql<{ n: number }>`SELECT count(*)::int AS n FROM ironflow.outbox
        WHERE workflow_type = ${limitedType} AND processed_at IS NULL AND dead_lettered_at IS NULL`,
      ([row]) => row.n
    )
    // The killer: while work remains, SIGKILL a random running process (one still loading holds nothing).
    let kills = 0
    const killer = yield* Effect.gen(function*() {
      while (true) {
        yield* Effect.sleep(options.killEveryMs)
        const running = current.filter((w): w is Worker => w !== undefined && ready.has(w) && w.isAlive())
        if (running.length === 0) continue
        const victim = running[Math.floor(Math.random() * running.length)]
        killed.add(victim.pid)
        victim.signal("SIGKILL")
        kills++
      }
    }).pipe(Effect.forkScoped)

    const done = yield* Effect.either(waitFor(
      "every effect processed",
      Effect.gen(function*() {
        if (starting.unsafePoll() === null) return Option.none()
        return (yield* pending) === 0 ? Option.some(true) : Option.none()
      }),
      { timeout: "90 seconds", interval: "250 millis" }
    ))
    yield* Fiber.interrupt(killer)
    const workSeconds = (Date.now() - begin) / 1000
    if (done._tag === "Left") failures.push(done.left.message)
    yield* Fiber.join(starting)
    if (rejected > 0) failures.push(`${rejected} start(s) were not accepted`)
    yield* say(name, `work done in ${workSeconds.toFixed(1)} s after ${kills} kill(s); stopping the processes`)

    stopping = true
    const last = current.filter((w): w is Worker => w !== undefined && w.isAlive())
    yield* Effect.forEach(last, stop, { concurrency: "unbounded", discard: true })
    yield* Effect.forEach(supervisors, Fiber.join, { discard: true }).pipe(
      Effect.timeoutFail({ duration: "90 seconds", onTimeout: () => new Error("processes did not stop in 90 s") })
    )
    for (const final of finals) {
      if (final.code !== 0) failures.push(`${final.worker.name} exited with ${final.code ?? final.signal} on SIGTERM`)
    }
    if (ownExits.length > 0) failures.push(`process(es) exited on their own: ${ownExits.join(", ")}`)

    // The sweep, per key, over each run's [started_at, ended_at), all in database time (microseconds, one clock).
    // A run without ended_at was cut by its process's death: it ends at the first recorded exit of its pid after
    // it started. That time is when the driver had seen the exit, so no earlier than the death: the interval can
    // only be too long, never too short, so the overlap counted is an upper bound (conservative). It cannot
    // manufacture an overlap either: the dead process's slot (and the row, for its rerun) comes back only when
    // its lease expires, at least lease minus heartbeat (1.5 s) after the death, while the driver records the
    // exit within milliseconds. A run cut with no exit recorded (should not happen) counts as running forever.
    const sweep = yield* sql<{ key: string; max_overlap: number; first_excess: string | null; seconds: number }>`
      WITH spans AS (
        SELECT r.key, r.started_at AS s, coalesce(r.ended_at,
          (SELECT min(d.died_by) FROM ${deaths} d WHERE d.pid = r.pid AND d.died_by >= r.started_at),
          'infinity') AS e
        FROM ${runs} r),
      edges AS (SELECT key, s AS at, 1 AS delta FROM spans UNION ALL SELECT key, e, -1 FROM spans),
      swept AS (
        SELECT key, at, sum(delta) OVER (PARTITION BY key ORDER BY at, delta ROWS UNBOUNDED PRECEDING) AS running
        FROM edges)
      SELECT key, max(running)::int AS max_overlap, min(at) FILTER (WHERE running > ${limitPerKey})::text AS first_excess,
        extract(epoch FROM max(at) FILTER (WHERE at < 'infinity') - min(at))::float8 AS seconds
      FROM swept GROUP BY key ORDER BY key`
    const overlapOf = new Map(sweep.map((row) => [row.key, row.max_overlap]))
    for (const row of sweep) {
      if (row.first_excess === null) continue
      // Evidence: the runs of that key in progress at the first instant the limit was exceeded.
      const inProgress = yield* sql<{ effect_id: string; pid: number; started_at: string; ended_at: string }>`
        SELECT effect_id, pid, started_at::text, coalesce(ended_at::text, 'killed, dead by ' || coalesce(
          (SELECT min(d.died_by) FROM ${deaths} d WHERE d.pid = r.pid AND d.died_by >= r.started_at)::text,
          '?')) AS ended_at
        FROM ${runs} r
        WHERE key = ${row.key} AND started_at <= ${row.first_excess}::timestamptz
          AND coalesce(ended_at, 'infinity') > ${row.first_excess}::timestamptz ORDER BY started_at`
      const key = JSON.stringify(row.key)
      const listed = inProgress.map((r) => `${r.effect_id} pid ${r.pid} [${r.started_at}, ${r.ended_at})`)
      failures.push(
        `key ${key} had ${row.max_overlap} runs at once (limit ${limitPerKey}); at ${row.first_excess}: ${
          listed.join("; ")
        }`
      )
    }
    const hotOverlap = overlapOf.get(hottest) ?? 0
    if (hotOverlap < limitPerKey) {
      failures.push(`the hot key ${hottest} never had ${limitPerKey} runs at once (max ${hotOverlap}): serialized`)
    }

    const [figures] = yield* sql<{
      effects: number
      processed: number
      dead_now: number
      dead_ever: number
      runs: number
      cut: number
      cut_unexplained: number
      reruns: number
      without_run: number
      foreign: number
    }>`
      SELECT
        (SELECT count(*) FROM ironflow.outbox WHERE workflow_type = ${limitedType})::int AS effects,
        (SELECT count(*) FROM ironflow.outbox WHERE workflow_type = ${limitedType}
          AND processed_at IS NOT NULL)::int AS processed,
        (SELECT count(*) FROM ironflow.outbox WHERE dead_lettered_at IS NOT NULL)::int AS dead_now,
        (SELECT count(*) FROM chaos.transitions WHERE what = 'dead')::int AS dead_ever,
        (SELECT count(*) FROM ${runs})::int AS runs,
        (SELECT count(*) FROM ${runs} WHERE ended_at IS NULL)::int AS cut,
        (SELECT count(*) FROM ${runs} r WHERE ended_at IS NULL AND NOT EXISTS (
          SELECT 1 FROM ${deaths} d WHERE d.pid = r.pid AND d.died_by >= r.started_at))::int AS cut_unexplained,
        (SELECT count(*) FROM (SELECT effect_id FROM ${runs}
          GROUP BY effect_id HAVING count(*) > 1) x)::int AS reruns,
        (SELECT count(*) FROM ironflow.outbox o WHERE o.workflow_type = ${limitedType} AND o.processed_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM ${runs} r
            WHERE r.effect_id = o.id AND r.ended_at IS NOT NULL))::int AS without_run,
        (SELECT count(*) FROM ${runs} r WHERE NOT (r.pid = ANY(${workers.map((w) => w.pid)}::int[])))::int
          AS foreign`
    if (figures.effects !== ids.length) failures.push(`${figures.effects} effect rows, expected ${ids.length}`)
    if (figures.processed !== figures.effects) {
      failures.push(`${figures.effects - figures.processed} effect(s) never processed`)
    }
    if (figures.dead_ever > 0 || figures.dead_now > 0) {
      failures.push(`${Math.max(figures.dead_ever, figures.dead_now)} row(s) dead-lettered`)
    }
    if (figures.without_run > 0) failures.push(`${figures.without_run} effect(s) processed without a finished run`)
    if (figures.cut_unexplained > 0) {
      failures.push(`${figures.cut_unexplained} run(s) without an end from a process that did not die`)
    }
    if (figures.foreign > 0) failures.push(`${figures.foreign} run(s) by a process the driver did not start`)
    if (crashes === 0) failures.push("no process died of a SIGKILL: the scenario proved nothing")
    // How soon a run cut by a kill was run again: its row (and its slot) came back when its lease expired.
    const [gap] = yield* sql<{ min_gap: number | null; max_gap: number | null }>`
      WITH cut AS (
        SELECT r.effect_id, r.started_at,
          (SELECT min(d.died_by) FROM ${deaths} d WHERE d.pid = r.pid AND d.died_by >= r.started_at) AS died_by
        FROM ${runs} r WHERE r.ended_at IS NULL)
      SELECT min(extract(epoch FROM n.started_at - c.died_by))::float8 AS min_gap,
        max(extract(epoch FROM n.started_at - c.died_by))::float8 AS max_gap
      FROM cut c CROSS JOIN LATERAL (SELECT min(r.started_at) AS started_at FROM ${runs} r
        WHERE r.effect_id = c.effect_id AND r.started_at > c.started_at) n`
    yield* say(name, `verified at ${elapsed()}`)
    return {
      failures,
      workers,
      figures: {
        workflows: ids.length,
        keys: sweep.length,
        limitPerKey,
        processes: options.processes,
        processesStarted: workers.length,
        sigkills: kills,
        diedOfSigkill: crashes,
        effects: figures.effects,
        processed: figures.processed,
        deadLettered: Math.max(figures.dead_ever, figures.dead_now),
        runs: figures.runs,
        runsCutByKill: figures.cut,
        effectsRunMoreThanOnce: figures.reruns,
        secondsFromDeathToRerunMin: gap.min_gap === null ? "-" : Number(gap.min_gap.toFixed(2)),
        secondsFromDeathToRerunMax: gap.max_gap === null ? "-" : Number(gap.max_gap.toFixed(2)),
        maxOverlapHotKey: hotOverlap,
        maxOverlapPerKey: sweep.map((row) => `${row.key.split(" ")[0]}:${row.max_overlap}`).join(" "),
        // From a key's first start to its last end: the hot key bounds the run (2 at a time).
        secondsPerKey: sweep.map((row) => `${row.key.split(" ")[0]}:${row.seconds.toFixed(1)}`).join(" "),
        workSeconds: Number(workSeconds.toFixed(1))
      }
    } satisfies ScenarioOutcome
  })
