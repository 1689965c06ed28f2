/**
 * Cross-process wake-ups on PostgreSQL: a commit in one process wakes the
 * workers of another through LISTEN/NOTIFY (the embedded database serves one
 * process and wakes in-process).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer } from "effect"
import { PgWorkflowStore, TestRuntime, WorkflowStore } from "ironflow"
import { assertBackend } from "./support/database.js"
import { commit, timer, uniqueType } from "./support/helpers.js"

/** A second store on the same database, as another process would have. */
const otherProcessStore = Effect.gen(function*() {
  const client = yield* PgClient.PgClient
  const other = yield* PgClient.make({ url: client.config.url!, maxConnections: 2 }).pipe(
    Effect.provide(Reactivity.layer)
  )
  return yield* PgWorkflowStore.make().pipe(
    Effect.provideService(PgClient.PgClient, other),
    Effect.provideService(SqlClient.SqlClient, other)
  )
})

const within = (ticket: Effect.Effect<void>, what: string) =>
  Effect.raceFirst(
    Effect.as(ticket, "woken" as const),
    Effect.as(
      TestRuntime.awaitCondition(Effect.succeed(false), { timeout: "5 seconds", description: what }).pipe(
        Effect.ignore
      ),
      "slept" as const
    )
  )

describe("notifications on postgres", () => {
  it.layer(PgWorkflowStore.layer.pipe(Layer.provideMerge(TestRuntime.postgres())), { timeout: 60_000 })((it) => {
    it.effect(`runs on ${"postgres"}: the database says so, and another connection sees the writes`, () =>
      assertBackend("postgres"))

    it.scoped("a commit with effects or timers in another process wakes this process's workers", () =>
      Effect.gen(function*() {
        const here = yield* WorkflowStore.WorkflowStore
        const there = yield* otherProcessStore
        const type = uniqueType("remote")
        // Let the other store's LISTEN connection settle.
        yield* TestRuntime.awaitCondition(Effect.succeed(false), { timeout: "300 millis" }).pipe(Effect.ignore)
        const effects = yield* here.wakeups.effects.ticket
        yield* commit({ workflowType: type, workflowId: "a" }, { events: [{ type: "E" }], effects: [{ type: "F" }] })
          .pipe(
            Effect.provideService(WorkflowStore.WorkflowStore, there)
          )
        assert.strictEqual(yield* within(effects, "an effects wake-up"), "woken")
        const timers = yield* here.wakeups.timers.ticket
        yield* commit({ workflowType: type, workflowId: "b" }, {
          events: [{ type: "E" }],
          timers: [timer(Duration.seconds(5), { type: "T" })]
        })
          .pipe(Effect.provideService(WorkflowStore.WorkflowStore, there))
        assert.strictEqual(yield* within(timers, "a timers wake-up"), "woken")
      }))

    it.scoped("wake-ups come back after the LISTEN connection is killed", () =>
      Effect.gen(function*() {
        const here = yield* WorkflowStore.WorkflowStore
        const there = yield* otherProcessStore
        const sql = yield* SqlClient.SqlClient
        const type = uniqueType("remote")
        const killed = yield* sql<{ n: number }>`
          SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
          WHERE application_name = 'ironflow-listen' AND datname = current_database()`
        assert.isAtLeast(killed[0].n, 1)
        // The listener reconnects within about a second; a commit after that wakes this process again.
        yield* TestRuntime.awaitCondition(
          Effect.map(
            sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE application_name = 'ironflow-listen' AND datname = current_database() AND state = 'idle'`,
            (rows) => rows[0].n >= 2
          ),
          { description: "both listeners to reconnect" }
        )
        const effects = yield* here.wakeups.effects.ticket
        yield* commit({ workflowType: type, workflowId: "c" }, { events: [{ type: "E" }], effects: [{ type: "F" }] })
          .pipe(
            Effect.provideService(WorkflowStore.WorkflowStore, there)
          )
        assert.strictEqual(yield* within(effects, "an effects wake-up after reconnecting"), "woken")
      }))
  })
})
