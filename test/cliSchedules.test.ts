/**
 * `ironflow schedules` (list, pause, resume, trigger) run as a subprocess
 * against PostgreSQL (a fresh database) and the embedded database (a temp
 * directory). The schedules are declared by a `WorkflowSchedule.layer` in this
 * process; a triggered tick is fired by a runtime started here afterwards.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import {
  Database,
  Decision,
  PgWorkflowStore,
  RuntimeConfig,
  Workflow,
  WorkflowRegistry,
  WorkflowRuntime,
  WorkflowSchedule
} from "ironflow"
import { execFile } from "node:child_process"
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const root = new URL("..", import.meta.url).pathname

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const ironflow = (args: ReadonlyArray<string>, env: Record<string, string | undefined>) =>
  Effect.async<Run>((resume) => {
    const child = execFile(process.execPath, [join(root, "bin/ironflow.js"), ...args], {
      cwd: root,
      env: { ...process.env, IRONFLOW_FROM_SOURCE: "1", ...env, FORCE_COLOR: "0", NO_COLOR: "1" },
      timeout: 120_000
    }, (error, stdout, stderr) => {
      resume(Effect.succeed({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const adminUrl = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

class Report extends Schema.TaggedClass<Report>()("Report", { at: Schema.String }) {}
class Reported extends Schema.TaggedClass<Reported>()("Reported", { at: Schema.String }) {}

const Reports = Workflow.make({
  type: "cli_reports",
  state: Schema.Struct({ count: Schema.Number }),
  input: Report,
  event: Reported,
  initialState: { count: 0 },
  workflowId: (input) => input.at,
  evolve: (state) => ({ count: state.count + 1 }),
  decide: (_now, _state, input) => Decision.accept(new Reported({ at: input.at })),
  isTerminal: () => false
})

const hourly = WorkflowSchedule.interval({
  name: "hourly-report",
  workflow: Reports,
  every: "1 hour",
  input: (tick) => new Report({ at: tick.toISOString() })
})

/** The schedule declared (and, with `runtime`, fired) by this process over the backend's database. */
const declared = (database: Database.Options, runtime: boolean) =>
  (runtime ? Layer.merge(WorkflowSchedule.layer([hourly]), WorkflowRuntime.layer) : WorkflowSchedule.layer([hourly]))
    .pipe(
      Layer.provide(WorkflowRegistry.layer([Reports])),
      Layer.provide(RuntimeConfig.layer({ timerPollInterval: "100 millis" })),
      Layer.provideMerge(PgWorkflowStore.layerWith({ notifications: false })),
      Layer.provide(Database.layer(database))
    )

const backends = [
  [
    "postgres",
    <A, E>(f: (env: Record<string, string | undefined>, database: Database.Options) => Effect.Effect<A, E>) =>
      Effect.gen(function*() {
        const admin = yield* PgClient.make({ url: Redacted.make(adminUrl), maxConnections: 1 })
        const name = `ironflow_cli_${randomUUID().replace(/-/g, "").slice(0, 16)}`
        yield* admin`CREATE DATABASE ${admin(name)}`
        const url = new URL(adminUrl)
        url.pathname = `/${name}`
        return yield* f({ DATABASE_URL: url.toString() }, {
          _tag: "Postgres",
          url: Redacted.make(url.toString()),
          maxConnections: 2
        }).pipe(Effect.ensuring(Effect.ignore(admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`)))
      }).pipe(Effect.scoped, Effect.provide(Reactivity.layer))
  ] as const,
  [
    "embedded",
    <A, E>(f: (env: Record<string, string | undefined>, database: Database.Options) => Effect.Effect<A, E>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "ironflow-cli-schedules-"))),
        (dir) =>
          f({ DATABASE_URL: undefined, IRONFLOW_DATA_DIR: join(dir, "data") }, {
            _tag: "Embedded",
            dataDir: join(dir, "data"),
            create: false
          }),
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      )
  ] as const
]

describe("ironflow schedules", () => {
  for (const [backend, withBackend] of backends) {
    it.live(`list, pause, resume, trigger (${backend})`, () =>
      withBackend((env, database) =>
        Effect.gen(function*() {
          assert.strictEqual((yield* ironflow(["migrate"], env)).code, 0)

          // Declared at start; the first pass computes the next tick.
          yield* Effect.gen(function*() {
            const schedules = yield* WorkflowSchedule.Schedules
            while (true) {
              const [info] = yield* schedules.list
              if (info !== undefined && Option.isSome(info.nextTickAt)) return
              yield* Effect.sleep("50 millis")
            }
          }).pipe(Effect.provide(declared(database, false)))

          const listed = yield* ironflow(["schedules", "list"], env)
          assert.strictEqual(listed.code, 0, listed.stderr)
          const [header, , row] = listed.stdout.trim().split("\n")
          for (
            const column of ["name", "workflow type", "calendar", "next tick", "last tick", "last outcome", "paused"]
          ) {
            assert.include(header, column)
          }
          assert.match(
            row,
            /^hourly-report\s+cli_reports\s+every 1h\s+skip\s+\d{4}-\d\d-\d\dT\d\d:00:00\.000Z\s+-\s+-\s+no$/
          )

          const paused = yield* ironflow(["schedules", "pause", "hourly-report"], env)
          assert.strictEqual(paused.code, 0, paused.stderr)
          assert.include(paused.stdout, "hourly-report is paused")
          const triggered = yield* ironflow(["schedules", "trigger", "hourly-report"], env)
          assert.strictEqual(triggered.code, 0, triggered.stderr)
          assert.include(triggered.stdout, "will be fired by a running runtime")
          const json = yield* ironflow(["schedules", "list", "--json"], env)
          const [stored] = JSON.parse(json.stdout) as ReadonlyArray<{
            readonly name: string
            readonly paused: boolean
            readonly lastTick: { readonly source: string; readonly outcome: { readonly status: string } }
          }>
          assert.deepStrictEqual(
            [stored.name, stored.paused, stored.lastTick.source, stored.lastTick.outcome.status],
            ["hourly-report", true, "trigger", "waiting"]
          )

          const resumed = yield* ironflow(["schedules", "resume", "hourly-report"], env)
          assert.strictEqual(resumed.code, 0, resumed.stderr)
          const unknown = yield* ironflow(["schedules", "trigger", "no-such-schedule"], env)
          assert.strictEqual(unknown.code, 2)
          assert.include(unknown.stderr + unknown.stdout, "no schedule named \"no-such-schedule\"")

          // A runtime that declares the schedule fires the triggered tick.
          yield* Effect.gen(function*() {
            const schedules = yield* WorkflowSchedule.Schedules
            while (true) {
              const [tick] = yield* schedules.ticks("hourly-report")
              if (tick.outcome.status === "applied") return
              yield* Effect.sleep("50 millis")
            }
          }).pipe(Effect.provide(declared(database, true)))
          const applied = yield* ironflow(["schedules", "list"], env)
          assert.include(applied.stdout, "applied (triggered)")
          assert.match(applied.stdout, /\s+no\n?$/)
        })
      ), { timeout: 300_000 })
  }
})
