/**
 * Schedules scenario (issue #14 item 1): several runtime processes declare
 * the same schedule (a tick every second, every missed tick caught up) while
 * a killer SIGKILLs a random one every `killEveryMs` (each slot restarts its
 * process at once) and the processes also SIGKILL themselves at some of their
 * timer commits (just before or just after). The workflow accepts duplicate
 * inputs, so only the runtime can keep a tick from being applied twice.
 * Passes when every tick of the window (from the first tick to the end of the
 * killing) is applied exactly once, no tick is applied twice, none failed and
 * nothing is dead-lettered, while processes demonstrably died.
 */
import { SqlClient } from "@effect/sql"
import { Effect, Fiber, Option } from "effect"
import { elapsed, say, waitFor } from "./common.js"
import { cronTallyId, cronTallyType } from "./CronTallyWorkflow.js"
import { spawnWorker, type Worker } from "./processes.js"
import type { ScenarioOutcome } from "./scenario.js"

export interface SchedulesOptions {
  readonly processes: number
  readonly windowSeconds: number
  readonly killEveryMs: number
  readonly killAtCommit: number
  readonly logDir: string
  readonly url: string
}

const scheduleName = "chaos-every-second"
const everyMs = 1000

export const run = (options: SchedulesOptions) =>
  Effect.gen(function*() {
    const name = "schedules"
    const sql = yield* SqlClient.SqlClient
    const failures: Array<string> = []

    let generation = 0
    let crashes = 0
    const workers: Array<Worker> = []
    const current: Array<Worker | undefined> = new Array(options.processes).fill(undefined)
    const spawn = (slot: number) => {
      const workerId = `cron-w${slot}-g${++generation}`
      return spawnWorker(workerId, options.logDir, {
        url: options.url,
        workerId,
        cron: { name: scheduleName, everyMs, pollMs: 200 },
        killAtCommit: options.killAtCommit,
        maxConnections: 4,
        timerLockMs: 2000,
        heartbeatMs: 500,
        timerPollMs: 200
      })
    }
    const supervise = (slot: number): Effect.Effect<never, Error, any> =>
      Effect.gen(function*() {
        while (true) {
          const worker: Worker = yield* spawn(slot)
          workers.push(worker)
          current[slot] = worker
          const exit = yield* worker.exited
          if (exit.signal === "SIGKILL") crashes++
        }
      })
    const supervisors = yield* Effect.forEach(
      Array.from({ length: options.processes }, (_, i) => i),
      (slot) => Effect.forkScoped(supervise(slot))
    )

    yield* say(
      name,
      `${options.processes} processes, a tick every ${everyMs} ms for ${options.windowSeconds} s, SIGKILL every ${options.killEveryMs} ms`
    )
    const declared = yield* waitFor(
      "the schedule declared and its first tick applied",
      Effect.map(
        sql<{ n: number }>`SELECT count(*)::int AS n FROM ironflow.events WHERE workflow_type = ${cronTallyType}`,
        ([row]) => (row.n > 0 ? Option.some(true) : Option.none())
      ),
      { timeout: "60 seconds", interval: "200 millis" }
    ).pipe(Effect.either)
    if (declared._tag === "Left") {
      yield* Fiber.interruptAll(supervisors)
      return { failures: [declared.left.message], workers, figures: {} } satisfies ScenarioOutcome
    }

    // The killer: SIGKILL a random live process every killEveryMs for the window.
    let kills = 0
    const windowEnd = Date.now() + options.windowSeconds * 1000
    while (Date.now() < windowEnd) {
      yield* Effect.sleep(options.killEveryMs)
      const alive = current.filter((w): w is Worker => w !== undefined && w.isAlive())
      if (alive.length === 0) continue
      alive[Math.floor(Math.random() * alive.length)].signal("SIGKILL")
      kills++
    }
    const end = new Date(Math.floor(Date.now() / everyMs) * everyMs)
    yield* say(
      name,
      `killing stopped at ${elapsed()} after ${kills} kill(s); waiting for the ticks up to ${end.toISOString()}`
    )

    const [{ created }] = yield* sql<{ created: Date }>`
      SELECT created_at AS created FROM ironflow.schedules WHERE name = ${scheduleName}`
    const applied = sql<{ at: string; n: number }>`
      SELECT payload->>'at' AS at, count(*)::int AS n FROM ironflow.events
      WHERE workflow_type = ${cronTallyType} AND workflow_id = ${cronTallyId}
      GROUP BY payload->>'at' ORDER BY payload->>'at'`
    const first = (yield* applied)[0]?.at
    const firstAt = first === undefined ? Number.NaN : Date.parse(first)
    const expected = Number.isNaN(firstAt) ? 0 : Math.floor((end.getTime() - firstAt) / everyMs) + 1
    const complete = yield* waitFor(
      `every tick from the first to ${end.toISOString()} applied`,
      Effect.map(applied, (rows) => {
        const inWindow = rows.filter((r) => Date.parse(r.at) <= end.getTime())
        return inWindow.length >= expected ? Option.some(true) : Option.none()
      }),
      { timeout: "60 seconds", interval: "250 millis" }
    ).pipe(Effect.either)
    yield* Fiber.interruptAll(supervisors)
    if (complete._tag === "Left") failures.push(complete.left.message)

    const rows = yield* applied
    const inWindow = rows.filter((r) => Date.parse(r.at) <= end.getTime())
    const twice = rows.filter((r) => r.n > 1)
    const expectedTicks = new Set(
      Array.from({ length: expected }, (_, i) => new Date(firstAt + i * everyMs).toISOString())
    )
    const missing = [...expectedTicks].filter((at) => !inWindow.some((r) => r.at === at))
    const unexpected = inWindow.filter((r) => !expectedTicks.has(r.at))
    const [bad] = yield* sql<{ failed: number; dead: number; ticks: number }>`
      SELECT
        (SELECT count(*) FROM ironflow.schedule_ticks WHERE error IS NOT NULL)::int AS failed,
        (SELECT count(*) FROM ironflow.timers WHERE dead_lettered_at IS NOT NULL)::int AS dead,
        (SELECT count(*) FROM ironflow.schedule_ticks)::int AS ticks`

    if (twice.length > 0) failures.push(`${twice.length} tick(s) applied more than once, e.g. ${twice[0].at}`)
    if (missing.length > 0) failures.push(`${missing.length} tick(s) of the window never applied, e.g. ${missing[0]}`)
    if (unexpected.length > 0) failures.push(`${unexpected.length} applied tick(s) off the calendar`)
    if (expected < options.windowSeconds) {
      failures.push(`only ${expected} tick(s) in the window: the scenario proved little`)
    }
    if (firstAt - created.getTime() > 15_000) {
      failures.push(`the first tick came ${firstAt - created.getTime()} ms after the schedule was declared`)
    }
    if (bad.failed > 0) failures.push(`${bad.failed} tick(s) could not build their input`)
    if (bad.dead > 0) failures.push(`${bad.dead} dead-lettered timer(s)`)
    if (crashes === 0) failures.push("no process was SIGKILLed: the scenario proved nothing")
    yield* say(name, `done at ${elapsed()}: ${crashes} SIGKILL(s), ${inWindow.length} tick(s) in the window`)
    return {
      failures,
      workers,
      figures: {
        processes: options.processes,
        windowTicks: expected,
        ticksApplied: rows.length,
        ticksAppliedTwice: twice.length,
        ticksMissing: missing.length,
        tickRows: bad.ticks,
        sigkills: crashes,
        killerKills: kills,
        processesStarted: workers.length
      }
    } satisfies ScenarioOutcome
  })
