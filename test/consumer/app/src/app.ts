/**
 * A small application that installs ironflow the way users do (see ../run.sh), run with plain
 * node on the embedded database (IRONFLOW_DATA_DIR) or on PostgreSQL (DATABASE_URL). It defines a
 * workflow, executes it, runs an effect handler that needs the application's own service, fires a
 * timer, dead-letters an effect, and shuts down gracefully while a handler is running. Any failed
 * check exits non-zero.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Context, Deferred, Duration, Effect, Layer, Option, Ref } from "effect"
import {
  Database,
  DeadLetters,
  PgWorkflowStore,
  RetryPolicy,
  RuntimeConfig,
  WorkflowRegistry,
  WorkflowService
} from "ironflow"
import * as WorkflowRuntime from "ironflow/WorkflowRuntime"
import { createRequire } from "node:module"
import { fileURLToPath } from "node:url"
import { Booked, ParcelWorkflow, Ship } from "./workflows.js"

const check = (ok: boolean, message: string): Effect.Effect<void> =>
  ok ? Effect.void : Effect.dieMessage(`consumer check failed: ${message}`)

// One copy of effect: the one ironflow imports is the application's own.
const own = createRequire(import.meta.url).resolve("effect")
const ironflowsEffect = createRequire(fileURLToPath(import.meta.resolve("ironflow"))).resolve("effect")

/** The application's own service, used by the handler. */
class Carrier extends Context.Tag("consumer/Carrier")<Carrier, {
  readonly book: (address: string) => Effect.Effect<string, string>
}>() {}

const CarrierLive = (slowStarted: Deferred.Deferred<void>, slowFinished: Ref.Ref<boolean>) =>
  Layer.succeed(Carrier, {
    book: (address) => {
      if (address === "nowhere") return Effect.fail(`no carrier serves ${address}`)
      if (address !== "slow road") return Effect.succeed(`T-${address.length}`)
      // A handler still running when the application shuts down: it finishes within shutdownTimeout.
      return Deferred.succeed(slowStarted, undefined).pipe(
        Effect.zipRight(Effect.sleep("700 millis")),
        Effect.zipRight(Ref.set(slowFinished, true)),
        Effect.as("T-slow")
      )
    }
  })

const ParcelHandler = ParcelWorkflow.handler(
  (effect) =>
    Effect.gen(function*() {
      const carrier = yield* Carrier
      const tracking = yield* carrier.book(effect.address)
      return Option.some(new Booked({ parcelId: effect.parcelId, tracking }))
    }),
  { retryPolicy: RetryPolicy.make({ maxAttempts: 2, baseDelay: "50 millis", maxDelay: "50 millis" }) }
)

const App = (carrier: Layer.Layer<Carrier>) =>
  WorkflowRuntime.layer.pipe(
    Layer.provide(WorkflowRegistry.layer([ParcelHandler])),
    Layer.provide(carrier),
    Layer.provide(RuntimeConfig.layer({ timerPollInterval: "100 millis", shutdownTimeout: "10 seconds" })),
    Layer.provide(PgWorkflowStore.layer),
    Layer.provide(Database.layerFromEnv())
  )

const awaitStatus = (parcelId: string, status: string) =>
  Effect.gen(function*() {
    const service = yield* WorkflowService.WorkflowService
    const deadline = Date.now() + 20_000
    while (true) {
      const state = yield* service.fetchLatestState(ParcelWorkflow, parcelId)
      if (state.status === status) return state
      if (Date.now() > deadline) {
        return yield* Effect.dieMessage(`consumer check failed: ${parcelId} is ${state.status}, not ${status}`)
      }
      yield* Effect.sleep("50 millis")
    }
  })

const program = Effect.gen(function*() {
  yield* check(own === ironflowsEffect, `ironflow imports ${ironflowsEffect}, the application ${own}`)
  const where = process.env.DATABASE_URL ? "PostgreSQL" : "the embedded database"

  // First run: execute, handler, timer, dead letter, then a graceful shutdown during a handler.
  const slowStarted = yield* Deferred.make<void>()
  const slowFinished = yield* Ref.make(false)
  const shutdownStarted = yield* Ref.make(0)
  yield* Effect.gen(function*() {
    const service = yield* WorkflowService.WorkflowService
    const deadLetters = yield* DeadLetters.DeadLetters

    const first = yield* service.execute(ParcelWorkflow, new Ship({ parcelId: "p-1", address: "1 Main St" }))
    yield* check(first._tag === "Accepted", `Ship p-1 was ${first._tag}`)
    const again = yield* service.execute(ParcelWorkflow, new Ship({ parcelId: "p-1", address: "1 Main St" }))
    yield* check(again._tag === "Rejected", `a second Ship p-1 was ${again._tag}`)
    yield* service.execute(ParcelWorkflow, new Ship({ parcelId: "p-2", address: "nowhere" }))

    const delivered = yield* awaitStatus("p-1", "delivered") // the handler ran, then the timer fired
    yield* check(delivered.tracking === "T-9", `p-1 tracking ${delivered.tracking}`)

    const deadline = Date.now() + 20_000
    let letters: ReadonlyArray<DeadLetters.DeadLetter> = []
    while (letters.length === 0 && Date.now() < deadline) {
      letters = yield* deadLetters.fetch({ workflowType: "parcel", workflowId: "p-2" })
      if (letters.length === 0) yield* Effect.sleep("50 millis")
    }
    yield* check(letters.length === 1, `p-2 has ${letters.length} dead letters`)
    yield* check(letters[0]!.attempts === 2, `p-2 dead letter after ${letters[0]!.attempts} attempts`)
    const lastError = Option.getOrElse(letters[0]!.lastError, () => "")
    yield* check(lastError.includes("no carrier serves nowhere"), `p-2 last error: ${lastError}`)

    yield* service.execute(ParcelWorkflow, new Ship({ parcelId: "p-3", address: "slow road" }))
    yield* Deferred.await(slowStarted)
    yield* Ref.set(shutdownStarted, Date.now())
  }).pipe(Effect.provide(App(CarrierLive(slowStarted, slowFinished)))) // leaving it shuts the runtime down

  const drained = Date.now() - (yield* Ref.get(shutdownStarted))
  yield* check(yield* Ref.get(slowFinished), "the running handler was interrupted at shutdown")
  yield* check(drained < 5_000, `shutdown took ${drained} ms`)

  // Second run on the same database: the handler's result was kept, and its timer fires now.
  yield* Effect.gen(function*() {
    const state = yield* awaitStatus("p-3", "delivered")
    yield* check(state.tracking === "T-slow", `p-3 tracking ${state.tracking}`)
    const instances = yield* (yield* WorkflowService.WorkflowService).listWorkflows("parcel", 10)
    yield* check(instances.length === 3, `${instances.length} parcel instances`)
  }).pipe(Effect.provide(App(CarrierLive(yield* Deferred.make<void>(), yield* Ref.make(false)))))

  console.log(`consumer app on ${where}: ok (graceful shutdown drained in ${Duration.format(drained)})`)
})

NodeRuntime.runMain(program)
