/**
 * Clock skew (issue #17, item 3), run over `PgWorkflowStore` on a given
 * database with live clocks: a runtime whose clock disagrees with the
 * database's by more than the bound claims nothing and says so (logs, the
 * claims-paused gauge, its announcement); within the bound, leases and due
 * times are read on the database's clock, so a runtime a few seconds ahead
 * neither steals a held lease nor fires a timer early.
 */
import type { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, FiberRef, HashSet, Layer, Logger, Metric, Option, Schema } from "effect"
import { Decision, PgWorkflowStore, Workflow, WorkflowMetrics, WorkflowStore } from "ironflow"
import { shifted } from "../../src/internal/clockGuard.js"
import { uniqueType } from "../support/helpers.js"
import { awaitCondition, awaitRows, live, liveSleep, serviceFor, startRuntime } from "../support/runtimeHarness.js"

class Start extends Schema.TaggedClass<Start>("Skew/Start")("Start", {
  id: Schema.String,
  timerMillis: Schema.optional(Schema.Number)
}) {}
class Woke extends Schema.TaggedClass<Woke>("Skew/Woke")("Woke", { id: Schema.String }) {}
class Started extends Schema.TaggedClass<Started>("Skew/Started")("Started", {}) {}
class Rang extends Schema.TaggedClass<Rang>("Skew/Rang")("Rang", {}) {}
class Call extends Schema.TaggedClass<Call>("Skew/Call")("Call", { id: Schema.String }) {}

const makeSkewWorkflow = (type: string) =>
  Workflow.make({
    type,
    state: Schema.Struct({ rang: Schema.Boolean }),
    input: Schema.Union(Start, Woke),
    event: Schema.Union(Started, Rang),
    effect: Call,
    initialState: { rang: false },
    workflowId: { field: "id" },
    evolve: (state, event) => (event._tag === "Rang" ? { rang: true } : state),
    decide: (_now, _state, input) =>
      input._tag === "Woke"
        ? Decision.accept<Started | Rang>(new Rang())
        : input.timerMillis !== undefined
        ? Decision.withTimerAfter(
          Decision.accept<Started | Rang>(new Started()),
          input.timerMillis,
          new Woke({ id: input.id })
        )
        : Decision.withEffect(Decision.accept<Started | Rang>(new Started()), new Call({ id: input.id }))
  })

/** The live clock moved by `skew()` milliseconds: another machine's clock. */
const skewedClock = (skew: () => number): Clock.Clock => shifted(Clock.make(), () => -skew())

/** Runs `self` with its log messages (and those of fibers it forks) collected into `into`. */
const collectingLogs = (into: Array<string>) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.locallyWith(
    self,
    FiberRef.currentLoggers,
    HashSet.add(Logger.make(({ logLevel, message }) => {
      into.push(`${logLevel.label}: ${Array.isArray(message) ? message.join(" ") : String(message)}`)
    }))
  )

const liveWorker = (workerId: string) =>
  Effect.flatMap(
    WorkflowStore.WorkflowStore,
    (store) =>
      Effect.map(store.liveWorkers, (workers) => Option.fromNullable(workers.find((w) => w.workerId === workerId)))
  )

export const suite = (label: string, database: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  it.layer(PgWorkflowStore.layer.pipe(Layer.provideMerge(database)), { timeout: 60_000 })(
    `clock skew (${label})`,
    (it) => {
      describe("beyond the bound", () => {
        it.scoped("a runtime whose clock is 10 minutes ahead claims nothing, says so, and resumes once it agrees", () =>
          live(Effect.gen(function*() {
            const type = uniqueType("skew_pause")
            const workflow = makeSkewWorkflow(type)
            let calls = 0
            const handler = workflow.handler(() => Effect.sync(() => void calls++).pipe(Effect.as(Option.none())))
            const service = yield* serviceFor([handler])
            yield* service.execute(workflow, new Start({ id: "a" }))

            let skew = 10 * 60 * 1000
            const logs: Array<string> = []
            const workerId = `skewed-${type}`
            yield* startRuntime([handler], { workerId, maxClockSkew: "2 seconds", clockCheckInterval: "100 millis" })
              .pipe(Effect.withClock(skewedClock(() => skew)), collectingLogs(logs))

            // Paused: announced as such, with the offset it measured, and loudly logged.
            const announced = yield* awaitCondition(
              "the paused announcement",
              Effect.map(liveWorker(workerId), Option.exists((w) => Option.isSome(w.claimsPaused)))
            ).pipe(Effect.zipRight(Effect.map(liveWorker(workerId), Option.getOrThrow)))
            const offset = Option.getOrThrow(announced.clockOffsetMillis)
            assert.isTrue(Math.abs(offset - skew) < 1000, `offset ${offset}`)
            assert.include(Option.getOrThrow(announced.claimsPaused), "ahead of the database's")
            assert.isTrue(
              logs.some((line) => line.startsWith("ERROR") && line.includes("claims no effects or timers")),
              logs.join("\n")
            )
            assert.strictEqual((yield* Metric.value(WorkflowMetrics.claimsPaused)).value, 1)
            yield* liveSleep("600 millis")
            assert.strictEqual(calls, 0, "a runtime with a broken clock ran a handler")
            const rows = yield* awaitRows("effect", type, "the effect, unclaimed", (rows) => rows.length === 1)
            assert.strictEqual(rows[0].lockedBy, null)

            // Its clock is fixed: claims resume, the announcement clears.
            skew = 0
            yield* awaitCondition("the effect to run", Effect.sync(() => calls === 1))
            yield* awaitCondition(
              "the cleared announcement",
              Effect.map(liveWorker(workerId), Option.exists((w) => Option.isNone(w.claimsPaused)))
            )
            assert.strictEqual((yield* Metric.value(WorkflowMetrics.claimsPaused)).value, 0)
            assert.isTrue(logs.some((line) => line.includes("claims resume")), logs.join("\n"))
          })))

        it.scoped("a runtime 10 minutes behind claims nothing either", () =>
          live(Effect.gen(function*() {
            const type = uniqueType("skew_behind")
            const workflow = makeSkewWorkflow(type)
            let calls = 0
            const handler = workflow.handler(() => Effect.sync(() => void calls++).pipe(Effect.as(Option.none())))
            const service = yield* serviceFor([handler])
            yield* service.execute(workflow, new Start({ id: "a" }))
            const workerId = `behind-${type}`
            yield* startRuntime([handler], { workerId, maxClockSkew: "2 seconds", clockCheckInterval: "100 millis" })
              .pipe(Effect.withClock(skewedClock(() => -10 * 60 * 1000)))
            yield* awaitCondition(
              "the paused announcement",
              Effect.map(
                liveWorker(workerId),
                Option.exists((w) =>
                  Option.exists(w.claimsPaused, (reason) => reason.includes("behind the database's"))
                )
              )
            )
            yield* liveSleep("600 millis")
            assert.strictEqual(calls, 0)
          })))

        it.scoped("maxClockSkew off: no check (what tests under TestClock use)", () =>
          live(Effect.gen(function*() {
            const type = uniqueType("skew_off")
            const workflow = makeSkewWorkflow(type)
            let calls = 0
            const handler = workflow.handler(() => Effect.sync(() => void calls++).pipe(Effect.as(Option.none())))
            const service = yield* serviceFor([handler])
            yield* service.execute(workflow, new Start({ id: "a" }))
            const workerId = `unchecked-${type}`
            yield* startRuntime([handler], { workerId, maxClockSkew: "off" })
              .pipe(Effect.withClock(skewedClock(() => 10 * 60 * 1000)))
            yield* awaitCondition("the effect to run", Effect.sync(() => calls === 1))
            const worker = Option.getOrThrow(yield* liveWorker(workerId))
            assert.isTrue(Option.isNone(worker.clockOffsetMillis))
            assert.isTrue(Option.isNone(worker.claimsPaused))
          })))
      })

      describe("within the bound, leases and due times are the database's", () => {
        it.scoped("a runtime 3 s ahead does not take a lease another runtime holds", () =>
          live(Effect.gen(function*() {
            const type = uniqueType("skew_lease")
            const workflow = makeSkewWorkflow(type)
            const starts: Array<string> = []
            // Hangs: its row is held by the lease heartbeat as long as the runtime that started it lives.
            const handler = workflow.handler((_effect, ctx) =>
              Effect.sync(() => void starts.push(ctx.workflow.workflowId)).pipe(Effect.zipRight(Effect.never))
            )
            const options = {
              maxClockSkew: "5 seconds",
              clockCheckInterval: "100 millis",
              effectLockDuration: "1500 millis",
              leaseHeartbeatInterval: "300 millis",
              shutdownTimeout: "100 millis"
            } as const
            const holder = yield* startRuntime([handler], { ...options, workerId: `holder-${type}` })
            yield* holder.service.execute(workflow, new Start({ id: "held" }))
            yield* awaitCondition("the holder to start the handler", Effect.sync(() => starts.length === 1))

            // Read on its own clock, the holder's lease (1.5 s, renewed every 0.3 s) always looks expired to it.
            yield* startRuntime([handler], { ...options, workerId: `ahead-${type}` })
              .pipe(Effect.withClock(skewedClock(() => 3000)))
            yield* liveSleep("3 seconds")
            assert.deepStrictEqual(starts, ["held"], "the row ran twice while its lease was held")
            const [row] = yield* awaitRows("effect", type, "the held row", (rows) => rows.length === 1)
            assert.strictEqual(row.lockedBy?.startsWith(`holder-${type}`), true, String(row.lockedBy))
            yield* holder.shutdown
          })))

        it.scoped("a runtime 3 s ahead fires a timer when it is due on the database's clock, not 3 s early", () =>
          live(Effect.gen(function*() {
            const type = uniqueType("skew_timer")
            const workflow = makeSkewWorkflow(type)
            const handler = workflow.handler(() => Effect.succeed(Option.none()))
            const service = yield* serviceFor([handler])
            const before = Date.now()
            yield* service.execute(workflow, new Start({ id: "t", timerMillis: 2000 }))
            yield* startRuntime([handler], {
              workerId: `timer-ahead-${type}`,
              maxClockSkew: "5 seconds",
              clockCheckInterval: "100 millis"
            }).pipe(Effect.withClock(skewedClock(() => 3000)))
            yield* awaitRows("timer", type, "the timer to fire", (rows) => rows[0]?.processedAt !== null)
            const elapsed = Date.now() - before
            assert.isAtLeast(elapsed, 1900, `fired after ${elapsed} ms`)
          })))
      })
    }
  )
