/**
 * Exactly-once scenario (issue #12): runtime processes that SIGKILL
 * themselves at their group commits, just before (handlers returned, their
 * results not applied) or just after (applied and acked, not yet known to
 * the process), and are restarted. The workflow accepts every duplicate
 * input, so only the runtime can keep a result from being applied twice.
 * Passes when every bump's result is applied exactly once and every timer
 * fires exactly once, while handlers demonstrably ran more than once.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Fiber, Option } from "effect"
import * as WorkflowRegistry from "ironflow/WorkflowRegistry"
import * as WorkflowService from "ironflow/WorkflowService"
import { elapsed, say, waitFor } from "./common.js"
import { spawnWorker, type Worker } from "./processes.js"
import type { ScenarioOutcome } from "./scenario.js"
import { Start, TallyHandler, tallySchemaSql, tallyType, TallyWorkflow } from "./TallyWorkflow.js"

export interface ExactlyOnceOptions {
  readonly instances: number
  readonly effectsPerInstance: number
  readonly processes: number
  readonly killAtCommit: number
  readonly logDir: string
  readonly url: string
}

export const run = (options: ExactlyOnceOptions) =>
  Effect.gen(function*() {
    const name = "exactly-once"
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(tallySchemaSql)
    const registry = yield* WorkflowRegistry.make([TallyHandler])
    const service = yield* WorkflowService.make.pipe(
      Effect.provideService(WorkflowRegistry.WorkflowRegistry, registry)
    )
    const failures: Array<string> = []

    let generation = 0
    let crashes = 0
    const workers: Array<Worker> = []
    const spawn = (slot: number) => {
      const workerId = `once-w${slot}-g${++generation}`
      return spawnWorker(workerId, options.logDir, {
        url: options.url,
        workerId,
        tally: true,
        killAtCommit: options.killAtCommit,
        maxConnections: 4,
        effectLockMs: 2000,
        timerLockMs: 2000,
        heartbeatMs: 500,
        effectPollMs: 100,
        timerPollMs: 200
      })
    }
    // Each slot restarts its process whenever it dies, as a supervisor would.
    const supervise = (slot: number): Effect.Effect<never, Error, any> =>
      Effect.gen(function*() {
        while (true) {
          const worker: Worker = yield* spawn(slot)
          workers.push(worker)
          const exit = yield* worker.exited
          if (exit.signal === "SIGKILL") crashes++
        }
      })
    const supervisors = yield* Effect.forEach(
      Array.from({ length: options.processes }, (_, i) => i + 1),
      (slot) => Effect.forkScoped(supervise(slot))
    )

    yield* say(name, `starting ${options.instances} instances × ${options.effectsPerInstance} effects`)
    yield* Effect.forEach(
      Array.from({ length: options.instances }, (_, i) => `once-${i}`),
      (id) => service.execute(TallyWorkflow, new Start({ id, effects: options.effectsPerInstance })),
      { concurrency: 8, discard: true }
    )
    const pending = sql<{ n: number }>`
      SELECT (SELECT count(*) FROM ironflow.outbox WHERE processed_at IS NULL AND dead_lettered_at IS NULL)::int
           + (SELECT count(*) FROM ironflow.timers WHERE processed_at IS NULL AND dead_lettered_at IS NULL)::int AS n`
    const drained = yield* Effect.either(waitFor(
      "every effect and timer processed",
      Effect.map(pending, ([row]) => (row.n === 0 ? Option.some(true) : Option.none())),
      { timeout: "240 seconds", interval: "500 millis" }
    ))
    yield* Fiber.interruptAll(supervisors)
    if (drained._tag === "Left") failures.push(String(drained.left.message))

    const [figures] = yield* sql<{
      applied: number
      distinct_applied: number
      doubled: number
      ticked: number
      doubled_ticks: number
      invocations: number
      dead: number
    }>`
      SELECT
        (SELECT count(*) FROM ironflow.events
          WHERE workflow_type = ${tallyType} AND payload->>'type' = 'BumpApplied')::int AS applied,
        (SELECT count(DISTINCT (workflow_id, payload->>'k')) FROM ironflow.events
          WHERE workflow_type = ${tallyType} AND payload->>'type' = 'BumpApplied')::int AS distinct_applied,
        (SELECT count(*) FROM (SELECT 1 FROM ironflow.events
          WHERE workflow_type = ${tallyType} AND payload->>'type' = 'BumpApplied'
          GROUP BY workflow_id, payload->>'k' HAVING count(*) > 1) d)::int AS doubled,
        (SELECT count(DISTINCT workflow_id) FROM ironflow.events
          WHERE workflow_type = ${tallyType} AND payload->>'type' = 'Ticked')::int AS ticked,
        (SELECT count(*) FROM (SELECT 1 FROM ironflow.events
          WHERE workflow_type = ${tallyType} AND payload->>'type' = 'Ticked'
          GROUP BY workflow_id HAVING count(*) > 1) d)::int AS doubled_ticks,
        (SELECT count(*) FROM tally.invocations)::int AS invocations,
        ((SELECT count(*) FROM ironflow.outbox WHERE dead_lettered_at IS NOT NULL)
          + (SELECT count(*) FROM ironflow.timers WHERE dead_lettered_at IS NOT NULL))::int AS dead`
    const expected = options.instances * options.effectsPerInstance
    if (figures.doubled > 0) failures.push(`${figures.doubled} result(s) applied more than once`)
    if (figures.doubled_ticks > 0) failures.push(`${figures.doubled_ticks} timer input(s) applied more than once`)
    if (figures.distinct_applied !== expected) {
      failures.push(`${expected - figures.distinct_applied} result(s) never applied`)
    }
    if (figures.ticked !== options.instances) {
      failures.push(`${options.instances - figures.ticked} timer(s) never fired`)
    }
    if (figures.dead > 0) failures.push(`${figures.dead} dead letter(s)`)
    if (crashes === 0) failures.push("no process crashed at a commit: the scenario proved nothing")
    if (figures.invocations <= expected) failures.push("no handler ran twice: no crash hit the window before a commit")
    yield* say(name, `done at ${elapsed()}: ${crashes} crash(es) at commits`)
    return {
      failures,
      workers,
      figures: {
        instances: options.instances,
        effects: expected,
        crashesAtCommit: crashes,
        handlerRuns: figures.invocations,
        handlerReruns: figures.invocations - expected,
        resultsApplied: figures.applied,
        resultsAppliedTwice: figures.doubled,
        timersFired: figures.ticked,
        timerInputsAppliedTwice: figures.doubled_ticks
      }
    } satisfies ScenarioOutcome
  })
