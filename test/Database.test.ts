/**
 * The embedded database's data directory: opened at most once per machine.
 * Inside a process every `Database` layer for one directory shares one
 * handle; another process is refused with a typed error naming it; a lock
 * left by a process that is gone (even when its pid now belongs to another
 * process) does not lock the directory forever.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import type { Context } from "effect"
import { ConfigProvider, Effect, Exit, Layer, Scope } from "effect"
import { Database, PgliteClient, PgWorkflowStore, WorkflowStore } from "ironflow"
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { commit } from "./support/helpers.js"

const root = new URL("..", import.meta.url).pathname

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "ironflow-db-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

/** A store on the embedded database in `dataDir`, open until `scope` closes. */
const openStore = (dataDir: string, scope: Scope.Scope) =>
  Layer.buildWithScope(
    PgWorkflowStore.layer.pipe(Layer.provideMerge(Database.layer({ _tag: "Embedded", dataDir }))),
    scope
  )

/** Opens the embedded database in `dataDir` until `scope` closes, and runs a statement on it. */
const select1 = (dataDir: string, scope: Scope.Scope) =>
  Layer.buildWithScope(Database.layer({ _tag: "Embedded", dataDir }), scope).pipe(
    Effect.flatMap((context) => Effect.provide(Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT 1`), context))
  )

const write = (context: Context.Context<WorkflowStore.WorkflowStore>, id: string) =>
  commit({ workflowType: "handles", workflowId: id }, { events: [{ type: "Written", id }] }).pipe(
    Effect.provide(context)
  )

describe("Database (embedded data directory)", () => {
  it.scoped(
    "two layers on one directory in one process share it: nothing acknowledged is lost",
    () =>
      Effect.gen(function*() {
        const dataDir = join(yield* tempDir, "data")
        const first = yield* Scope.make()
        const second = yield* Scope.make()
        const a = yield* openStore(dataDir, first)
        const b = yield* openStore(dataDir, second)
        const ids: Array<string> = []
        for (let i = 0; i < 20; i++) {
          const id = `${i % 2 === 0 ? "a" : "b"}-${i}`
          yield* write(i % 2 === 0 ? a : b, id)
          ids.push(id)
        }
        // The second user goes first: the directory stays open for the first one.
        yield* Scope.close(second, Exit.void)
        yield* write(a, "a-after")
        ids.push("a-after")
        yield* Scope.close(first, Exit.void)

        const reopened = yield* Scope.make()
        const c = yield* openStore(dataDir, reopened)
        const check = Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const rows = yield* sql<{ workflow_id: string }>`
          SELECT workflow_id FROM ironflow.events WHERE workflow_type = 'handles' ORDER BY workflow_id`
          assert.deepStrictEqual(rows.map((r) => r.workflow_id), [...ids].sort())
          // The index agrees with the table: every row is found through it.
          yield* sql`SET enable_seqscan = off`
          for (const id of ids) {
            const found = yield* sql<{ n: unknown }>`
            SELECT count(*) AS n FROM ironflow.events WHERE workflow_type = 'handles' AND workflow_id = ${id}`
            assert.strictEqual(Number(found[0].n), 1, id)
          }
          yield* sql`SET enable_seqscan = on`
          const instances = yield* WorkflowStore.WorkflowStore.pipe(
            Effect.flatMap((store) => store.listInstances({ workflowType: "handles", limit: 100, offset: 0 }))
          )
          assert.strictEqual(instances.length, ids.length)
        })
        yield* check.pipe(Effect.provide(c))
        yield* Scope.close(reopened, Exit.void)
        assert.isFalse(existsSync(`${dataDir}.lock`), "the last release removes the lock")
      }),
    120_000
  )

  it.scoped(
    "a lock whose pid now belongs to another process (started at another time) does not block",
    () =>
      Effect.gen(function*() {
        const dataDir = join(yield* tempDir, "data")
        const bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim()
        // The parent of this test process is alive, but it is not the process that wrote the lock.
        writeFileSync(
          `${dataDir}.lock`,
          JSON.stringify({
            pid: process.ppid,
            startTime: "1",
            bootId,
            host: hostname(),
            token: "left-behind",
            since: "2020-01-01T00:00:00.000Z"
          })
        )
        const scope = yield* Scope.make()
        yield* select1(dataDir, scope)
        const lock = JSON.parse(readFileSync(`${dataDir}.lock`, "utf8"))
        assert.strictEqual(lock.pid, process.pid)
        yield* Scope.close(scope, Exit.void)
      }),
    120_000
  )

  it.scoped(
    "a lock of this pid left by an earlier process (pid 1 in a container, say) does not block",
    () =>
      Effect.gen(function*() {
        const dataDir = join(yield* tempDir, "data")
        writeFileSync(`${dataDir}.lock`, String(process.pid)) // the format of earlier builds
        const scope = yield* Scope.make()
        yield* select1(dataDir, scope)
        yield* Scope.close(scope, Exit.void)
      }),
    120_000
  )

  it.scoped(
    "a directory open in another process is refused with DataDirectoryInUse naming that process",
    () =>
      Effect.gen(function*() {
        const dataDir = join(yield* tempDir, "data")
        const child = yield* Effect.acquireRelease(
          Effect.sync(() =>
            spawn(process.execPath, ["--import", "tsx", join(root, "test/support/holdDataDir.ts"), dataDir], {
              cwd: root,
              stdio: ["pipe", "pipe", "pipe"]
            })
          ),
          (child) =>
            Effect.async<void>((resume) => {
              if (child.exitCode !== null) return resume(Effect.void)
              child.once("exit", () => resume(Effect.void))
              child.stdin.end()
            })
        )
        let stderr = ""
        child.stderr.on("data", (chunk) => (stderr += String(chunk)))
        yield* Effect.async<void, Error>((resume) => {
          child.stdout.on("data", (chunk) => String(chunk).includes("ready") && resume(Effect.void))
          child.once("exit", (code) => resume(Effect.fail(new Error(`the holder exited with ${code}: ${stderr}`))))
        })
        const scope = yield* Scope.make()
        const error = yield* select1(dataDir, scope).pipe(Effect.flip)
        assert.instanceOf(error, PgliteClient.DataDirectoryInUse)
        assert.strictEqual((error as PgliteClient.DataDirectoryInUse).pid, child.pid)
        assert.include(error.message, `in use by process ${child.pid}`)
        yield* Scope.close(scope, Exit.void)
        // Once it is gone, the directory opens here, with what it wrote.
        child.stdin.end()
        yield* Effect.async<void>((resume) => {
          if (child.exitCode !== null) return resume(Effect.void)
          child.once("exit", () => resume(Effect.void))
        })
        const after = yield* Scope.make()
        yield* select1(dataDir, after)
        yield* Scope.close(after, Exit.void)
      }),
    120_000
  )

  it.scoped(
    "a data directory that is a file, or missing when it must exist, is a typed error",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        writeFileSync(join(dir, "file"), "not a database")
        const scope = yield* Scope.make()
        const file = yield* select1(join(dir, "file"), scope).pipe(Effect.flip)
        assert.instanceOf(file, PgliteClient.DataDirectoryUnusable)
        assert.include(file.message, "is a file, not a directory")
        const missing = yield* Layer.buildWithScope(
          Database.layer({ _tag: "Embedded", dataDir: join(dir, "missing"), create: false }),
          scope
        ).pipe(Effect.flip)
        assert.instanceOf(missing, PgliteClient.DataDirectoryUnusable)
        assert.include(missing.message, "does not exist")
        assert.isFalse(existsSync(join(dir, "missing")))
        yield* Scope.close(scope, Exit.void)
      }),
    60_000
  )
})

describe("Database.config", () => {
  const read = (env: Record<string, string>) =>
    Effect.withConfigProvider(Database.config, ConfigProvider.fromMap(new Map(Object.entries(env))))

  it.effect("DATABASE_URL selects PostgreSQL; unset or blank selects the embedded database", () =>
    Effect.gen(function*() {
      const postgres = yield* read({ DATABASE_URL: "postgres://u@h/db" })
      assert.strictEqual(postgres._tag, "Postgres")
      for (const blank of ["", "  "]) {
        const embedded = yield* read({ DATABASE_URL: blank, IRONFLOW_DATA_DIR: "/tmp/x" })
        assert.deepStrictEqual(embedded, { _tag: "Embedded", dataDir: "/tmp/x" })
      }
      assert.deepStrictEqual(yield* read({}), { _tag: "Embedded", dataDir: ".ironflow" })
    }))
})
