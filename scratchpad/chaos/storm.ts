/**
 * Scenario 1, SIGKILL storm: three runtime processes work through the
 * workflows while a killer SIGKILLs a random one every 2 s and restarts it
 * (under a new worker id, as a supervisor would). Some B effects are poisoned
 * until they are dead letters; those are then retried while the storm goes
 * on. Every instance must end terminal with exactly its events, every effect
 * processed, no lease of a killed process held past its lease time.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Fiber, Option } from "effect"
import * as DeadLetters from "ironflow/DeadLetters"
import { workflowType } from "./ChaosWorkflow.js"
import { elapsed, makeIds, say, startWorkflows, waitFor } from "./common.js"
import { spawnWorker, type Worker } from "./processes.js"
import type { ScenarioOutcome } from "./scenario.js"
import { countTerminal, verify } from "./verify.js"

export interface StormOptions {
  readonly workflows: number
  readonly processes: number
  readonly killEveryMs: number
  readonly leaseMs: number
  readonly logDir: string
  readonly database: string
  readonly url: string
}

export const run = (options: StormOptions) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const deadLetters = yield* DeadLetters.DeadLetters
    const name = "storm"
    const failures: Array<string> = []
    const ids = makeIds("storm", options.workflows)
    const poisoned = (i: number) => i % 100 === 7
    const poisonCount = ids.filter((_, i) => poisoned(i)).length

    let generation = 0
    const spawn = (slot: number) => {
      const workerId = `storm-w${slot}-g${++generation}`
      return spawnWorker(workerId, options.logDir, {
        url: options.url,
        workerId,
        maxConnections: 5,
        effectLockMs: options.leaseMs,
        timerLockMs: options.leaseMs,
        heartbeatMs: 1000,
        shutdownTimeoutMs: 5000,
        delayMs: [5, 25],
        retry: { maxAttempts: 3, baseMs: 200, maxMs: 1000 }
      })
    }
    const slots: Array<Worker> = []
    const everyWorker: Array<Worker> = []
    for (let slot = 1; slot <= options.processes; slot++) {
      const worker = yield* spawn(slot)
      slots.push(worker)
      everyWorker.push(worker)
    }
    yield* Effect.forEach(slots, (w) => w.ready, { concurrency: "unbounded", discard: true }).pipe(
      Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error("workers not ready in 60 s") })
    )
    yield* say(
      name,
      `${options.processes} workers ready; starting ${ids.length} workflows (${poisonCount} poisoned), SIGKILL every ${options.killEveryMs} ms`
    )
    const begin = Date.now()

    // The killer: SIGKILL a random process every killEveryMs, restart it at once.
    const kills: Array<{ readonly workerId: string; readonly at: number; readonly held: number }> = []
    let killing = true
    const killer = yield* Effect.gen(function*() {
      while (killing) {
        yield* Effect.sleep(options.killEveryMs)
        if (!killing) break
        const slot = Math.floor(Math.random() * slots.length)
        const victim = slots[slot]
        if (!victim.isAlive()) failures.push(`${victim.name} had exited on its own before it was killed`)
        victim.signal("SIGKILL")
        const at = Date.now()
        yield* victim.exited
        const [row] = yield* sql<{ held: unknown }>`
          SELECT (SELECT count(*) FROM ironflow.outbox WHERE locked_by LIKE ${victim.workerId + "-%"}
            AND processed_at IS NULL) + (SELECT count(*) FROM ironflow.timers
            WHERE locked_by LIKE ${victim.workerId + "-%"} AND processed_at IS NULL) AS held`
        kills.push({ workerId: victim.workerId, at, held: Number(row.held) })
        const replacement = yield* spawn(slot + 1)
        slots[slot] = replacement
        everyWorker.push(replacement)
      }
    }).pipe(Effect.forkScoped)

    // Leases of killed processes: once their lease time has passed (plus a margin), none may still be held.
    let leaseChecks = 0
    let staleLeases = 0
    const staleSamples: Array<string> = []
    const leaseWatcher = yield* Effect.gen(function*() {
      while (true) {
        yield* Effect.sleep("1 second")
        const expired = kills.filter((k) => Date.now() - k.at > options.leaseMs + 1500).map((k) => k.workerId + "-%")
        if (expired.length === 0) continue
        const rows = yield* sql<{ locked_by: string; kind: string }>`
          SELECT locked_by, 'effect' AS kind FROM ironflow.outbox
          WHERE locked_by LIKE ANY(${expired}::text[]) AND locked_until > now() AND processed_at IS NULL
          UNION ALL
          SELECT locked_by, 'timer' AS kind FROM ironflow.timers
          WHERE locked_by LIKE ANY(${expired}::text[]) AND locked_until > now() AND processed_at IS NULL`
        leaseChecks++
        staleLeases += rows.length
        for (const row of rows.slice(0, 3)) staleSamples.push(`${row.kind} locked by ${row.locked_by}`)
      }
    }).pipe(Effect.forkScoped)

    const progress = yield* Effect.gen(function*() {
      while (true) {
        yield* Effect.sleep("5 seconds")
        const { terminal, total } = yield* countTerminal
        yield* say(name, `${terminal}/${ids.length} terminal (${total} started), ${kills.length} kills`)
      }
    }).pipe(Effect.forkScoped)

    // Poisoned B effects fail until they are dead letters. The doctor checks each dead letter's last_error,
    // cures its instance and retries it at once, while the storm goes on (other processes keep running and
    // being killed).
    yield* sql`INSERT INTO chaos.poison SELECT unnest(${ids.filter((_, i) => poisoned(i))}::text[])`
    let retried = 0
    let retryRefused = 0
    let sampleError = ""
    const unreadable: Array<string> = []
    const doctor = yield* Effect.gen(function*() {
      while (true) {
        yield* Effect.sleep("500 millis")
        const letters = yield* deadLetters.fetch({ workflowType, limit: 1000 })
        for (const letter of letters) {
          const lastError = Option.getOrElse(letter.lastError, () => "")
          if (!lastError.includes("is poisoned")) unreadable.push(`${letter.workflowId}: ${JSON.stringify(lastError)}`)
          if (sampleError === "") sampleError = lastError.split("\n")[0]
          yield* sql`DELETE FROM chaos.poison WHERE workflow_id = ${letter.workflowId}`
          if (yield* deadLetters.retry(letter.id)) retried++
          else retryRefused++
        }
      }
    }).pipe(Effect.forkScoped)

    const starting = yield* startWorkflows(ids, poisoned).pipe(Effect.fork)
    yield* waitFor(
      "every workflow to be terminal",
      Effect.map(countTerminal, ({ terminal }) => terminal === ids.length ? Option.some(terminal) : Option.none()),
      { timeout: `${Math.max(180, ids.length / 10)} seconds`, interval: "500 millis" }
    )
    yield* Fiber.interrupt(doctor)
    if (unreadable.length > 0) {
      failures.push(
        `${unreadable.length} dead letter(s) without the handler's error in last_error, e.g. ${unreadable[0]}`
      )
    }
    yield* Fiber.join(starting)
    const workSeconds = (Date.now() - begin) / 1000
    killing = false
    yield* Fiber.join(killer)
    yield* say(name, `all ${ids.length} terminal after ${workSeconds.toFixed(1)} s and ${kills.length} kills`)

    // Let the last acks land, then check the leases once more and stop everything gracefully.
    yield* waitFor(
      "no pending effect or timer",
      Effect.map(
        sql<{ n: unknown }>`SELECT (SELECT count(*) FROM ironflow.outbox WHERE processed_at IS NULL)
          + (SELECT count(*) FROM ironflow.timers WHERE processed_at IS NULL) AS n`,
        ([row]) => Number(row.n) === 0 ? Option.some(true) : Option.none()
      ),
      { timeout: "30 seconds", interval: "250 millis" }
    ).pipe(Effect.catchAll((error) => Effect.sync(() => failures.push(error.message))))
    yield* Fiber.interrupt(leaseWatcher)
    yield* Fiber.interrupt(progress)
    if (staleLeases > 0) {
      failures.push(
        `${staleLeases} lease(s) of killed processes still held after their lease time: ${staleSamples.join("; ")}`
      )
    }
    const finals = slots.slice()
    // A process that is still loading has no SIGTERM handler yet: stop only running runtimes.
    yield* Effect.forEach(finals, (w) => Effect.ignore(Effect.timeout(w.ready, "60 seconds")), { discard: true })
    for (const worker of finals) worker.signal("SIGTERM")
    const exits = yield* Effect.forEach(finals, (w) => w.exited, { concurrency: "unbounded" })
    for (const [i, exit] of exits.entries()) {
      if (exit.code !== 0) failures.push(`${finals[i].name} exited with ${exit.code ?? exit.signal} on SIGTERM`)
    }
    // Announcements live for 3 heartbeats (3 s): those of processes killed longer ago must have expired.
    const finalIds = finals.map((w) => w.workerId)
    const longDead = kills.filter((k) => Date.now() - k.at > 4000).map((k) => k.workerId)
    const [announced] = yield* sql<{ finals: unknown; dead: unknown }>`
      SELECT (SELECT count(*) FROM ironflow.workers WHERE worker_id = ANY(${finalIds}::text[])) AS finals,
        (SELECT count(*) FROM ironflow.workers WHERE worker_id = ANY(${longDead}::text[])
          AND expires_at > now()) AS dead`
    if (Number(announced.finals) > 0) failures.push(`${announced.finals} stopped runtime(s) still announced`)
    if (Number(announced.dead) > 0) failures.push(`${announced.dead} killed process(es) still announced as live`)
    // Crashes other than our kills.
    const killed = new Set(kills.map((k) => k.workerId))
    const crashed = everyWorker.filter((w) => !killed.has(w.workerId) && !finals.includes(w))
    if (crashed.length > 0) failures.push(`worker(s) exited on their own: ${crashed.map((w) => w.name).join(", ")}`)

    const verification = yield* verify(ids)
    failures.push(...verification.failures)
    const knownDead = verification.deadLettered.filter((d) =>
      d.kind === "effect" && d.lastError.includes("is poisoned")
    )
    const unknownDead = verification.deadLettered.length - knownDead.length
    if (knownDead.length !== poisonCount) {
      failures.push(`${knownDead.length} poisoned effect(s) were dead-lettered, expected ${poisonCount}`)
    }
    if (unknownDead > 0) {
      failures.push(
        `${unknownDead} row(s) dead-lettered unexpectedly, e.g. ${
          JSON.stringify(verification.deadLettered.find((d) => !d.lastError.includes("is poisoned")))
        }`
      )
    }
    const outcome: ScenarioOutcome = {
      figures: {
        workflows: ids.length,
        processes: options.processes,
        kills: kills.length,
        killEverySeconds: options.killEveryMs / 1000,
        rowsHeldByKilledProcesses: kills.reduce((sum, k) => sum + k.held, 0),
        leasesOfDeadProcessesHeldPastLeaseTime: staleLeases,
        leaseChecks,
        duplicateHandlerInvocations: verification.figures.duplicateHandlerInvocations,
        effectsRunMoreThanOnce: verification.figures.effectsRunMoreThanOnce,
        overlappingRunsOfOneEffect: verification.figures.overlappingRuns,
        handlerInvocations: verification.figures.handlerInvocations,
        doubledEvents: verification.figures.doubledEvents,
        missingEvents: verification.figures.missingEvents,
        doubledCompletions: verification.figures.doubledCompletions,
        terminal: verification.figures.terminal,
        effects: verification.figures.effects,
        timers: verification.figures.timers,
        knowinglyDeadLettered: knownDead.length,
        unexpectedlyDeadLettered: unknownDead,
        deadLettersRetried: retried,
        deadLetterRetriesRefused: retryRefused,
        deadLetterSampleError: sampleError,
        leasesHeldAtEnd: verification.figures.leasesHeld,
        killedProcessesStillAnnouncedAsLive: Number(announced.dead),
        workSeconds: Number(workSeconds.toFixed(1)),
        workflowsPerSecond: Number((ids.length / workSeconds).toFixed(1))
      },
      failures,
      workers: everyWorker
    }
    yield* say(name, `verified at ${elapsed()}`)
    return outcome
  })
