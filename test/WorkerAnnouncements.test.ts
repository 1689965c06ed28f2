/**
 * A runtime announces itself in ironflow.workers while it runs and retires
 * when it stops, even when an announcement refresh is due during shutdown.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import {
  Decision,
  PgWorkflowStore,
  RuntimeConfig,
  TestRuntime,
  Workflow,
  WorkflowRegistry,
  WorkflowRuntime,
  WorkflowStore
} from "ironflow"
import { assertBackend } from "./support/database.js"

class Ping extends Schema.TaggedClass<Ping>()("Ping", { id: Schema.String }) {}
class Pinged extends Schema.TaggedClass<Pinged>()("Pinged", {}) {}
const Announced = Workflow.make({
  type: "announced",
  state: Schema.Struct({}),
  input: Ping,
  event: Pinged,
  initialState: {},
  workflowId: { field: "id" },
  evolve: (s) => s,
  decide: () => Decision.accept(new Pinged())
})

describe("worker announcements", () => {
  it.layer(PgWorkflowStore.layer.pipe(Layer.provideMerge(TestRuntime.postgres())), { timeout: 60_000 })((it) => {
    it.effect(`runs on ${"postgres"}: the database says so, and another connection sees the writes`, () =>
      assertBackend("postgres"))

    it.effect("a runtime is announced while it runs and retired when it stops", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        for (let round = 0; round < 10; round++) {
          const workerId = `announced-${round}`
          // Refreshes every few milliseconds, so one is often due while the runtime shuts down.
          const runtime = WorkflowRuntime.layer.pipe(
            Layer.provide(WorkflowRegistry.layer([Announced])),
            Layer.provide(
              RuntimeConfig.layer({ ...TestRuntime.testConfig, workerId, leaseHeartbeatInterval: "5 millis" })
            ),
            Layer.provide(Layer.succeed(WorkflowStore.WorkflowStore, store))
          )
          yield* Effect.scoped(Effect.gen(function*() {
            yield* Layer.build(runtime)
            yield* TestRuntime.awaitCondition(
              Effect.map(store.liveWorkers, (workers) => workers.some((w) => w.workerId === workerId)),
              { description: `${workerId} to be announced` }
            )
            const live = (yield* store.liveWorkers).find((w) => w.workerId === workerId)
            assert.deepStrictEqual(live?.workflowTypes, ["announced"])
            yield* TestRuntime.awaitCondition(Effect.succeed(false), { timeout: `${round * 3} millis` }).pipe(
              Effect.ignore
            )
          }))
          const after = yield* store.liveWorkers
          assert.isFalse(after.some((w) => w.workerId === workerId), `${workerId} still announced after it stopped`)
        }
      }))
  })
})
