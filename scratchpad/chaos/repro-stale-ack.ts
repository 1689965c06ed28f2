/**
 * A deterministic reproduction, step by step with the store API, of what the
 * race suite catches intermittently (races.chaos.ts, "a keyed timer
 * rescheduled by its own firing"): a timer worker fires a keyed timer whose
 * input reschedules the same key (the row is reset for the next firing), its
 * claim loop claims the same row again under the same worker name before the
 * ack of the first firing was written, and that late ack, fenced only by
 * `locked_by`, marks the row processed although its second firing never ran.
 * If the process then dies (or shuts down: unstarted rows are released only
 * while unprocessed), the second firing is lost for good.
 *
 * The worker now passes the rows it owns (claimed, outcome not written yet) as
 * `exclude` to its claims, so step 3 claims nothing and the reset row stays
 * pending for its next firing.
 *
 *   node --import tsx scratchpad/chaos/repro-stale-ack.ts    # exit 1 if the firing is lost
 */
import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Console, Duration, Effect, Layer, Redacted, Schema } from "effect"
import * as Decision from "ironflow/Decision"
import * as PgWorkflowStore from "ironflow/PgWorkflowStore"
import * as Workflow from "ironflow/Workflow"
import * as WorkflowRegistry from "ironflow/WorkflowRegistry"
import * as WorkflowService from "ironflow/WorkflowService"
import { WorkflowStore } from "ironflow/WorkflowStore"
import { randomBytes } from "node:crypto"
import { serverUrl } from "./common.js"

class Begin extends Schema.TaggedClass<Begin>()("Begin", { id: Schema.String }) {}
class Tick extends Schema.TaggedClass<Tick>()("Tick", { id: Schema.String, seq: Schema.Number }) {}
class Ticked extends Schema.TaggedClass<Ticked>()("Ticked", { seq: Schema.Number }) {}
const Ticker = Workflow.make({
  type: "repro_ticker",
  state: Schema.Struct({ ticks: Schema.Number }),
  input: Schema.Union(Begin, Tick),
  event: Ticked,
  initialState: { ticks: 0 },
  workflowId: { field: "id" },
  evolve: (state, event) => ({ ticks: event.seq }),
  decide: (_now, state, input) =>
    input._tag === "Begin"
      ? Decision.accept(new Ticked({ seq: 0 })).pipe(
        Decision.withTimerAfter("10 millis", new Tick({ id: input.id, seq: 1 }), { key: "tick" })
      )
      : input.seq < 3
      ? Decision.accept(new Ticked({ seq: input.seq })).pipe(
        Decision.withTimerAfter("10 millis", new Tick({ id: input.id, seq: input.seq + 1 }), { key: "tick" })
      )
      : Decision.accept(new Ticked({ seq: input.seq })),
  isTerminal: (state) => state.ticks >= 3
})

const program = Effect.gen(function*() {
  const store = yield* WorkflowStore
  const service = yield* WorkflowService.WorkflowService
  // A worker passes the rows it still owns (claimed, outcome not written yet) as `exclude`.
  const claim = (worker: string, exclude: ReadonlyArray<string> = []) =>
    store.claim({
      kind: "timer",
      workerId: worker,
      workflowTypes: [Ticker.type],
      limit: 10,
      lease: Duration.millis(300),
      exclude
    })

  yield* service.execute(Ticker, new Begin({ id: "t1" }))
  yield* Effect.sleep("30 millis")
  const [first] = yield* claim("w-timer")
  yield* Console.log(`1. w-timer claims row ${first.id}: ${JSON.stringify(first.payload)}`)
  yield* service.executeDynamic(Ticker.type, first.payload)
  yield* Console.log("2. w-timer fires it: Ticked(1), and the same key is rescheduled (the row is reset)")
  yield* Effect.sleep("30 millis")
  const again = yield* claim("w-timer", [first.id])
  yield* Console.log(
    `3. w-timer's claim loop looks again while the first firing's ack is queued: it claims ${again.length} row(s) (the row is still its own)`
  )
  const acked = yield* store.complete("timer", "w-timer", [first.id])
  yield* Console.log(
    `4. the ack of the FIRST firing lands: rows marked processed ${
      JSON.stringify(acked)
    } (the reset row is not its lease any more)`
  )
  yield* Console.log("5. w-timer dies before running the second firing; its lease expires")
  yield* Effect.sleep("600 millis")
  const rescue = yield* claim("other-timer")
  const pending = yield* store.fetchPending(Ticker.type, "t1")
  const state = yield* service.fetchLatestState(Ticker, "t1")
  yield* Console.log(
    `6. another worker claims ${rescue.length} row(s); pending for t1: ${pending.length}; ticks ${state.ticks} of 3`
  )
  const lost = rescue.length === 0 && pending.length === 0 && state.ticks < 3
  yield* Console.log(
    lost
      ? "LOST: the second firing will never run (a stale ack of the same worker completed the re-claimed row)"
      : "ok: the re-claimed row survived the stale ack"
  )
  if (lost) return yield* Effect.fail(new Error("timer firing lost"))
})

const database = `ironflow_chaos_repro_${randomBytes(4).toString("hex")}`
const url = new URL(serverUrl)
url.pathname = `/${database}`

const Database = Layer.scopedDiscard(
  Effect.gen(function*() {
    const admin = yield* PgClient.PgClient
    yield* admin`CREATE DATABASE ${admin(database)}`
    yield* Effect.addFinalizer(() => Effect.ignore(admin`DROP DATABASE IF EXISTS ${admin(database)} WITH (FORCE)`))
  })
).pipe(Layer.provide(PgClient.layer({ url: Redacted.make(serverUrl), maxConnections: 1 })))

const App = WorkflowService.layer.pipe(
  Layer.provide(WorkflowRegistry.layer([Ticker])),
  Layer.provideMerge(PgWorkflowStore.layer),
  Layer.provide(PgClient.layer({ url: Redacted.make(url.toString()), maxConnections: 2 })),
  Layer.provide(Database)
)

program.pipe(Effect.provide(App), NodeRuntime.runMain)
