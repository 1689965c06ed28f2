/**
 * The `ironflow` command and `npm start`, run as subprocesses against
 * PostgreSQL (a fresh database) and the embedded database (a temp directory).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Redacted } from "effect"
import { Database, PgWorkflowStore, WorkflowRegistry, WorkflowService } from "ironflow"
import { execFile } from "node:child_process"
import { randomUUID } from "node:crypto"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Open, Ship } from "./support/cancelFixtures.js"
import { CliCancellable, CliPlain } from "./support/cliCancel.js"

const root = new URL("..", import.meta.url).pathname

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const run = (
  command: string,
  args: ReadonlyArray<string>,
  env: Record<string, string | undefined>,
  timeout = 120_000
) =>
  Effect.async<Run>((resume) => {
    const child = execFile(command, args, {
      cwd: root,
      // IRONFLOW_FROM_SOURCE: test the sources, never a dist/ left by an earlier `npm run build`
      env: { ...process.env, IRONFLOW_FROM_SOURCE: "1", ...env, FORCE_COLOR: "0", NO_COLOR: "1" },
      timeout
    }, (error, stdout, stderr) => {
      resume(Effect.succeed({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const ironflow = (args: ReadonlyArray<string>, env: Record<string, string | undefined>) =>
  run(process.execPath, [join(root, "bin/ironflow.js"), ...args], env)

const adminUrl = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** A fresh database on the PostgreSQL server, dropped at the end. */
const withDatabase = <A, E>(f: (url: string) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const admin = yield* PgClient.make({ url: Redacted.make(adminUrl), maxConnections: 1 })
    const name = `ironflow_cli_${randomUUID().replace(/-/g, "").slice(0, 16)}`
    yield* admin`CREATE DATABASE ${admin(name)}`
    const url = new URL(adminUrl)
    url.pathname = `/${name}`
    return yield* f(url.toString()).pipe(
      Effect.ensuring(Effect.ignore(admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`))
    )
  }).pipe(Effect.scoped, Effect.provide(Reactivity.layer))

const backends = [
  [
    "postgres",
    (f: (env: Record<string, string | undefined>) => Effect.Effect<void, unknown>) =>
      withDatabase((url) => f({ DATABASE_URL: url }))
  ] as const,
  [
    "embedded",
    (f: (env: Record<string, string | undefined>) => Effect.Effect<void, unknown>) =>
      Effect.acquireUseRelease(
        Effect.sync(() => mkdtempSync(join(tmpdir(), "ironflow-cli-"))),
        (dir) => f({ DATABASE_URL: undefined, IRONFLOW_DATA_DIR: join(dir, "data") }),
        (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
      )
  ] as const
]

describe("ironflow command", () => {
  it.live("--help lists the commands", () =>
    Effect.gen(function*() {
      const result = yield* ironflow(["--help"], {})
      assert.strictEqual(result.code, 0)
      for (const command of ["migrate", "instances", "dead-letters", "stats", "projections", "diagram", "prune"]) {
        assert.include(result.stdout, command)
      }
    }), 60_000)

  it.live("a bad argument is a one-line error and exit code 2", () =>
    Effect.gen(function*() {
      const result = yield* ironflow(["instances", "list", "--limit", "many"], { DATABASE_URL: undefined })
      assert.strictEqual(result.code, 2)
      assert.notInclude(result.stdout + result.stderr, "    at ")
    }), 60_000)

  it.live(
    "an unreachable database is a clear one-line error without secrets, and a non-zero exit",
    () =>
      Effect.gen(function*() {
        const result = yield* ironflow(["stats"], { DATABASE_URL: "postgres://postgres:s3cret@127.0.0.1:1/none" })
        assert.strictEqual(result.code, 1)
        const lines = result.stderr.trim().split("\n")
        assert.strictEqual(lines.length, 1)
        assert.include(lines[0], "ECONNREFUSED")
        assert.notInclude(result.stderr + result.stdout, "s3cret")
      }),
    60_000
  )

  it.live(
    "negative durations, limits, offsets and batch sizes are bad arguments (exit 2), and touch nothing",
    () =>
      Effect.gen(function*() {
        const dir = mkdtempSync(join(tmpdir(), "ironflow-cli-"))
        const env = { DATABASE_URL: undefined, IRONFLOW_DATA_DIR: join(dir, "data") }
        try {
          for (
            const args of [
              ["prune", "--older-than", "-5 days"],
              ["prune", "--older-than", " -1 hours", "--dry-run"],
              ["prune", "--older-than", "1 day", "--batch-size", "0"],
              ["instances", "list", "--limit", "-1"],
              ["instances", "list", "--offset", "-3"],
              ["dead-letters", "list", "--limit", "0"]
            ]
          ) {
            const result = yield* ironflow(args, env)
            assert.strictEqual(result.code, 2, `${args.join(" ")}: ${result.stdout}${result.stderr}`)
            assert.notInclude(result.stdout + result.stderr, "    at ")
          }
          assert.isFalse(existsSync(join(dir, "data")))
        } finally {
          rmSync(dir, { recursive: true, force: true })
        }
      }),
    120_000
  )

  it.live(
    "a --data-dir that is a file, or does not exist, is said so; only migrate creates a data directory",
    () =>
      Effect.gen(function*() {
        const dir = mkdtempSync(join(tmpdir(), "ironflow-cli-"))
        try {
          writeFileSync(join(dir, "file"), "not a database")
          const file = yield* ironflow(["stats", "--data-dir", join(dir, "file")], { DATABASE_URL: undefined })
          assert.strictEqual(file.code, 1)
          assert.include(file.stderr, `${join(dir, "file")} is a file, not a directory`)
          assert.notInclude(file.stderr, "[object Object]")

          const missing = join(dir, "missing")
          for (
            const args of [["stats"], ["instances", "list"], ["projections", "list"], [
              "prune",
              "--older-than",
              "1 day"
            ]]
          ) {
            const result = yield* ironflow([...args, "--data-dir", missing], { DATABASE_URL: undefined })
            assert.strictEqual(result.code, 1, args.join(" "))
            assert.include(result.stderr, `${missing} does not exist`)
            assert.isFalse(existsSync(missing), `${args.join(" ")} created the directory`)
          }
          const fromEnv = yield* ironflow(["stats"], { DATABASE_URL: undefined, IRONFLOW_DATA_DIR: missing })
          assert.strictEqual(fromEnv.code, 1)
          assert.include(fromEnv.stderr, "does not exist")

          const migrate = yield* ironflow(["migrate", "--data-dir", missing], { DATABASE_URL: undefined })
          assert.strictEqual(migrate.code, 0, migrate.stderr)
          const stats = yield* ironflow(["stats", "--data-dir", missing], { DATABASE_URL: undefined })
          assert.strictEqual(stats.code, 0, stats.stderr)
        } finally {
          rmSync(dir, { recursive: true, force: true })
        }
      }),
    120_000
  )

  it.live(
    "stats shows each live runtime's clock offset and says loudly when one is not claiming",
    () =>
      withDatabase((url) =>
        Effect.gen(function*() {
          const migrate = yield* ironflow(["migrate"], { DATABASE_URL: url })
          assert.strictEqual(migrate.code, 0, migrate.stderr)
          const client = yield* PgClient.make({ url: Redacted.make(url), maxConnections: 1 })
          yield* client`
          INSERT INTO ironflow.workers (worker_id, workflow_types, host, pid, started_at, heartbeat_at, expires_at,
            clock_offset_ms, claims_paused)
          VALUES ('fast-one', ARRAY['order'], 'h1', 1, now(), now(), now() + interval '1 hour', 600000,
              'its clock is 10m ahead of the database''s'),
            ('good-one', ARRAY['order'], 'h2', 2, now(), now(), now() + interval '1 hour', -3, NULL)`
          const stats = yield* ironflow(["stats"], { DATABASE_URL: url })
          assert.strictEqual(stats.code, 0, stats.stderr)
          assert.include(stats.stdout, "fast-one (h1 pid 1: order, clock +10m, CLAIMS PAUSED)")
          assert.include(stats.stdout, "good-one (h2 pid 2: order, clock -3ms)")
          assert.include(stats.stdout, "CLAIMS PAUSED on fast-one: its clock is 10m ahead of the database's")
          const json = yield* ironflow(["stats", "--json"], { DATABASE_URL: url })
          const workers = JSON.parse(json.stdout).liveWorkers as Array<Record<string, unknown>>
          const fast = workers.find((w) => w.workerId === "fast-one")!
          assert.strictEqual(fast.clockOffsetMillis, 600000)
          assert.strictEqual(fast.claimsPaused, "its clock is 10m ahead of the database's")
          assert.strictEqual(workers.find((w) => w.workerId === "good-one")!.claimsPaused, null)
        }).pipe(Effect.scoped, Effect.provide(Reactivity.layer))
      ),
    120_000
  )

  it.live("migrate on a schema newer than this build says so", () =>
    withDatabase((url) =>
      Effect.gen(function*() {
        const first = yield* ironflow(["migrate"], { DATABASE_URL: url })
        assert.strictEqual(first.code, 0, first.stderr)
        const client = yield* PgClient.make({ url: Redacted.make(url), maxConnections: 1 })
        yield* client`INSERT INTO ironflow.schema_migrations (version, name, checksum) VALUES (999, 'from_a_newer_build', 'x')`
        const again = yield* ironflow(["migrate"], { DATABASE_URL: url })
        assert.strictEqual(again.code, 0, again.stderr)
        assert.include(again.stdout, "schema ironflow is at migration 999, newer than this build")
        assert.match(again.stdout, /knows migrations up to \d+\)/)
      }).pipe(Effect.scoped, Effect.provide(Reactivity.layer))
    ), 120_000)

  /** Runs `self` with a service over the database the command would use (closed before the command runs). */
  const withService = <A, E>(
    env: Record<string, string | undefined>,
    self: Effect.Effect<A, E, WorkflowService.WorkflowService>
  ) =>
    self.pipe(
      Effect.provide(
        WorkflowService.layer.pipe(
          Layer.provide(WorkflowRegistry.layer([CliCancellable, CliPlain])),
          Layer.provide(PgWorkflowStore.layer),
          Layer.provide(Database.layer(
            env.DATABASE_URL !== undefined
              ? { _tag: "Postgres", url: Redacted.make(env.DATABASE_URL), maxConnections: 2 }
              : { _tag: "Embedded", dataDir: env.IRONFLOW_DATA_DIR! }
          ))
        )
      )
    )

  for (const [name, backend] of backends) {
    it.live(
      `instances cancel executes the cancellation input; refusals exit 1, bad arguments exit 2 (${name})`,
      () =>
        backend((env) =>
          Effect.gen(function*() {
            yield* withService(
              env,
              Effect.gen(function*() {
                const service = yield* WorkflowService.WorkflowService
                yield* service.execute(CliCancellable, new Open({ id: "o-1" }))
                yield* service.execute(CliCancellable, new Open({ id: "o-2" }))
                yield* service.execute(CliCancellable, new Ship({ id: "o-2" }))
                yield* service.execute(CliPlain, new Open({ id: "p-1" }))
              })
            )
            const module = ["--workflows", "test/support/cliCancel.ts"]
            const cancel = (type: string, id: string, extra: ReadonlyArray<string> = module) =>
              ironflow(["instances", "cancel", type, id, "--reason", "customer asked", ...extra], env)
            const oneLine = (result: Run) => {
              assert.notInclude(result.stdout + result.stderr, "    at ")
              assert.strictEqual(result.stderr.trim().split("\n").length, 1, result.stderr)
            }

            const done = yield* cancel("cli_cancellable", "o-1")
            assert.strictEqual(done.code, 0, done.stderr)
            assert.include(done.stdout, "cancelled cli_cancellable:o-1: 1 event(s) appended")
            const state = yield* withService(
              env,
              Effect.flatMap(WorkflowService.WorkflowService, (s) => s.fetchLatestState(CliCancellable, "o-1"))
            )
            assert.deepStrictEqual(state, { status: "cancelled", reason: "customer asked" })

            const again = yield* cancel("cli_cancellable", "o-1")
            assert.strictEqual(again.code, 1)
            assert.include(again.stderr, "cli_cancellable:o-1 is already completed")
            oneLine(again)

            const rejected = yield* cancel("cli_cancellable", "o-2")
            assert.strictEqual(rejected.code, 1)
            assert.include(rejected.stderr, `cli_cancellable:o-2 rejected the cancellation: "cannot cancel: shipped"`)
            oneLine(rejected)

            const missing = yield* cancel("cli_cancellable", "nobody")
            assert.strictEqual(missing.code, 1)
            assert.include(missing.stderr, "no instance cli_cancellable:nobody")
            oneLine(missing)

            const unsupported = yield* cancel("cli_plain", "p-1")
            assert.strictEqual(unsupported.code, 1)
            assert.include(
              unsupported.stderr,
              "cannot cancel cli_plain:p-1: the workflow declares no cancellation input"
            )
            oneLine(unsupported)

            const noModule = yield* cancel("cli_cancellable", "o-2", [])
            assert.strictEqual(noModule.code, 2)
            assert.include(noModule.stderr, "pass --workflows MODULE")
            oneLine(noModule)

            const unknownType = yield* cancel("cli_nope", "o-2")
            assert.strictEqual(unknownType.code, 2)
            assert.include(unknownType.stderr, "no workflow type cli_nope among the loaded definitions")
            oneLine(unknownType)

            const noReason = yield* ironflow(["instances", "cancel", "cli_cancellable", "o-2", ...module], env)
            assert.strictEqual(noReason.code, 2)

            // Nothing but the first cancel wrote anything.
            const events = yield* withService(
              env,
              Effect.flatMap(WorkflowService.WorkflowService, (s) =>
                Effect.all([
                  s.fetchWorkflowEvents("cli_cancellable", "o-2"),
                  s.fetchWorkflowEvents("cli_plain", "p-1"),
                  s.listWorkflows("cli_cancellable")
                ]))
            )
            assert.deepStrictEqual(events[0].map((e) => (e.payload as { type: string }).type), ["Opened", "Shipped"])
            assert.deepStrictEqual(events[1].map((e) => (e.payload as { type: string }).type), ["Opened"])
            assert.strictEqual(events[2].length, 2)

            const stats = yield* ironflow(["stats", "--json"], env)
            assert.strictEqual(stats.code, 0, stats.stderr)
            const row = JSON.parse(stats.stdout).types.find((t: { workflowType: string }) =>
              t.workflowType === "cli_cancellable"
            )
            assert.strictEqual(row.timedOutAttempts, 0, "stats show timed-out attempts")
            assert.strictEqual(row.pendingTimers, 1, "o-2's timer; o-1's was cancelled")
          })
        ),
      300_000
    )

    it.live(
      `projections: an unknown name is refused (exit 2) and creates nothing; forget removes a checkpoint (${name})`,
      () =>
        backend((env) =>
          Effect.gen(function*() {
            const migrate = yield* ironflow(["migrate"], env)
            assert.strictEqual(migrate.code, 0, migrate.stderr)
            const list = Effect.map(
              ironflow(["projections", "list", "--json"], env),
              (r) => (JSON.parse(r.stdout) as Array<{ name: string }>).map((p) => p.name)
            )

            const typo = yield* ironflow(["projections", "rebuild", "trial-cuont"], env)
            assert.strictEqual(typo.code, 2, typo.stdout + typo.stderr)
            assert.include(typo.stderr, "no projection named trial-cuont")
            assert.deepStrictEqual(yield* list, [])

            const rebuild = yield* ironflow(
              ["projections", "rebuild", "trial-count", "--workflows", "test/support/cliProjection.ts"],
              env
            )
            assert.strictEqual(rebuild.code, 0, rebuild.stderr)
            assert.deepStrictEqual(yield* list, ["trial-count"])
            const again = yield* ironflow(["projections", "rebuild", "trial-count"], env)
            assert.strictEqual(again.code, 0, again.stderr)

            const forgetTypo = yield* ironflow(["projections", "forget", "trial-cuont"], env)
            assert.strictEqual(forgetTypo.code, 2)
            assert.include(forgetTypo.stderr, "known: trial-count")
            const forget = yield* ironflow(["projections", "forget", "trial-count"], env)
            assert.strictEqual(forget.code, 0, forget.stderr)
            assert.deepStrictEqual(yield* list, [])
            const gone = yield* ironflow(["projections", "rebuild", "trial-count"], env)
            assert.strictEqual(gone.code, 2)
          })
        ),
      200_000
    )

    it.live(
      `npm start runs the example and the command inspects it (${name})`,
      () =>
        backend((env) =>
          Effect.gen(function*() {
            const first = yield* run("npm", ["start", "--silent"], env, 180_000)
            assert.strictEqual(first.code, 0, first.stderr)
            assert.include(first.stdout, "this is the first run")
            assert.include(first.stdout, "Summary:")
            assert.match(first.stdout, /run1-book\s+shipped/)
            assert.match(first.stdout, /run1-desk\s+refunded/)
            assert.match(first.stdout, /run1-piano\s+shipping/)
            assert.include(first.stdout, "rejected run1-book")
            const second = yield* run("npm", ["start", "--silent"], env, 180_000)
            assert.strictEqual(second.code, 0, second.stderr)
            assert.include(second.stdout, "6 orders from 1 earlier run(s); this is run 2")

            const list = yield* ironflow(["instances", "list", "--type", "order", "--json"], env)
            assert.strictEqual(list.code, 0, list.stderr)
            assert.strictEqual(JSON.parse(list.stdout).length, 12)

            const show = yield* ironflow(
              [
                "instances",
                "show",
                "order",
                "run1-piano",
                "--workflows",
                "scratchpad/order-app/OrderWorkflow.ts",
                "--json"
              ],
              env
            )
            assert.strictEqual(show.code, 0, show.stderr)
            const view = JSON.parse(show.stdout)
            assert.strictEqual(view.state.status, "shipping")
            assert.deepStrictEqual(view.events.map((e: { payload: { type: string } }) => e.payload.type), [
              "OrderPlaced",
              "PaymentCaptured",
              "ShipmentRequested"
            ])
            assert.strictEqual(view.deadLetters.length, 1)

            const dead = yield* ironflow(["dead-letters", "list", "--type", "order", "--json"], env)
            const letters = JSON.parse(dead.stdout)
            assert.strictEqual(letters.length, 2)
            assert.include(letters[0].lastError, "carrier API rejected")
            const count = yield* ironflow(["dead-letters", "count", "--type", "order", "--id", "run2-piano"], env)
            assert.strictEqual(count.stdout.trim(), "1")

            const stats = yield* ironflow(["stats", "--json"], env)
            assert.strictEqual(stats.code, 0, stats.stderr)
            const order = JSON.parse(stats.stdout).types.find((t: { workflowType: string }) =>
              t.workflowType === "order"
            )
            assert.strictEqual(order.deadLetters, 2)

            const retry = yield* ironflow(["dead-letters", "retry", letters[0].id], env)
            assert.strictEqual(retry.code, 0, retry.stderr)
            const again = yield* ironflow(["dead-letters", "retry", letters[0].id], env)
            assert.strictEqual(again.code, 1)
            assert.include(again.stderr, "is not a dead effect")

            const diagram = yield* ironflow([
              "diagram",
              "order",
              "--workflows",
              "scratchpad/order-app/OrderWorkflow.ts"
            ], env)
            assert.strictEqual(diagram.code, 0, diagram.stderr)
            assert.include(diagram.stdout, "stateDiagram-v2")

            const prune = yield* ironflow(["prune", "--older-than", "1 day", "--dry-run", "--json"], env)
            assert.strictEqual(prune.code, 0, prune.stderr)
            assert.strictEqual(JSON.parse(prune.stdout).dryRun, true)
          })
        ),
      400_000
    )
  }
})
