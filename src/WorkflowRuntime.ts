/**
 * The runtime: effect workers run handlers for the outbox, timer workers fire
 * due timers, both as supervised fibers owned by a scope. Closing the scope
 * (Ctrl+C under `NodeRuntime.runMain`, or the end of `run(shutdown)`) drains
 * them gracefully.
 *
 * `make` wires the parts, each in `src/internal/`: limits (admission),
 * attempts (handler or timer input, settled by `settlement.ts`'s one
 * decision), the committer, housekeeping, and the workers, described per kind
 * by one table. ARCHITECTURE.md walks the data path through them.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { randomUUID } from "node:crypto"
import * as DeadLetters from "./DeadLetters.js"
import * as Attempts from "./internal/attempts.js"
import * as Committer from "./internal/committer.js"
import * as Housekeeping from "./internal/housekeeping.js"
import * as Limits from "./internal/limits.js"
import * as Worker from "./internal/worker.js"
import * as WorkerPool from "./internal/workerPool.js"
import * as RuntimeConfig from "./RuntimeConfig.js"
import type * as Workflow from "./Workflow.js"
import type { DuplicateWorkflowType, StoreError } from "./WorkflowError.js"
import * as WorkflowRegistry from "./WorkflowRegistry.js"
import * as WorkflowService from "./WorkflowService.js"
import { type DeadLetter, type DeadLetterQuery, type QueueKind, WorkflowStore } from "./WorkflowStore.js"

/**
 * @since 0.1.0
 * @category tags
 */
export class WorkflowRuntime extends Context.Tag("ironflow/WorkflowRuntime")<WorkflowRuntime, {
  /** The runtime configuration. */
  readonly config: () => RuntimeConfig.Resolved
  /** The configured worker id, or the random UUID chosen when none was configured. */
  readonly workerId: () => string
  /** Registered workflow types. */
  readonly workflowCount: () => number
  /** The service the workers route inputs through. */
  readonly service: WorkflowService.WorkflowService["Type"]
  /**
   * Starts the workers in the current scope; they drain when it closes: no new
   * claims, rows not started yet released at once, handlers in flight given
   * `shutdownTimeout` to finish, then interrupted (their leases released,
   * no attempt counted).
   */
  readonly start: Effect.Effect<void, never, Scope.Scope>
  /**
   * Runs the workers until `shutdown` completes (or fails), or until this
   * fiber is interrupted, then drains them. Always succeeds, as ironflow's
   * `run` always returns `Ok(())`.
   */
  readonly run: <A, E, R>(shutdown: Effect.Effect<A, E, R>) => Effect.Effect<void, never, R>
  /** Dead-lettered effects (ironflow's `fetch_dead_letters`). */
  readonly fetchDeadLetters: (query?: DeadLetterQuery) => Effect.Effect<ReadonlyArray<DeadLetter>, StoreError>
  readonly countDeadLetters: (query?: DeadLetterQuery) => Effect.Effect<number, StoreError>
  readonly retryDeadLetter: (effectId: string) => Effect.Effect<boolean, StoreError>
  readonly fetchTimerDeadLetters: (query?: DeadLetterQuery) => Effect.Effect<ReadonlyArray<DeadLetter>, StoreError>
  readonly countTimerDeadLetters: (query?: DeadLetterQuery) => Effect.Effect<number, StoreError>
  readonly retryTimerDeadLetter: (timerId: string) => Effect.Effect<boolean, StoreError>
}>() {}

/**
 * `"{workerId}-effect"` for a single worker, `"{workerId}-effect-{i}"` for
 * several (i from 0); likewise `-timer`. Stored as `locked_by`.
 *
 * @since 0.1.0
 * @category utils
 */
export const workerName: (workerId: string, kind: "effect" | "timer", index: number, count: number) => string =
  Worker.name

interface Parts {
  readonly store: WorkflowStore["Type"]
  readonly registry: WorkflowRegistry.WorkflowRegistry["Type"]
  readonly config: RuntimeConfig.Resolved
  readonly workerId: string
  readonly kinds: ReadonlyArray<WorkerPool.Kind>
  readonly commit: (kind: QueueKind) => Worker.WorkerOptions["commit"]
}

/** Starts the runtime's fibers in the current scope, in the order that makes them stop in the right one. */
const startIn = (parts: Parts): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { config, registry, store, workerId } = parts
    const types = registry.types
    if (types.length === 0) yield* Effect.logWarning("no workflows registered; the workers will never claim anything")
    yield* Effect.logInfo(
      `starting workflow runtime: worker id ${workerId}, ${types.length} workflow type(s), ${config.effectWorkers} effect worker(s), ${config.timerWorkers} timer worker(s)`
    )
    // The first finalizer runs last: the runtime has stopped once everything below has.
    yield* Effect.addFinalizer(() => Effect.logInfo("workflow runtime stopped"))

    // --- Housekeeping ---
    //
    // Responsible for the clock check (the workers claim under its guard and on its clock), the announcement
    // of this process, the queue gauges and retention.
    //
    // Started before the workers, so it stops after they drained: the announcement is retired once nothing
    // of this process claims any more.
    const guard = yield* Housekeeping.start(store, { workerId, workflowTypes: types, config })

    // --- Workers ---
    //
    // Responsible for claiming rows, running their attempts and committing their outcomes: `count` workers of
    // each kind in the table, each with its claim loop, handler fibers, commit loop and lease heartbeat.
    //
    // Shut down first, in two steps for all of them at once: no worker claims anything once shutdown begins,
    // then all drain together, within one `shutdownTimeout` (plus the last commits) however many there are.
    const workers = yield* WorkerPool.start(parts.kinds, {
      store,
      config,
      workerId,
      workflowTypes: types,
      commit: parts.commit,
      guard
    })
    yield* Effect.addFinalizer(() => Effect.zipRight(workers.stopClaiming, workers.drain))
  }).pipe(Effect.annotateLogs({ package: "ironflow", workerId: parts.workerId }))

/**
 * Builds a runtime (workers not started) from the store, registry and
 * service in context and the `RuntimeConfig` reference.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<
  WorkflowRuntime["Type"],
  never,
  WorkflowStore | WorkflowRegistry.WorkflowRegistry | WorkflowService.WorkflowService
> = Effect.gen(function*() {
  const store = yield* WorkflowStore
  const registry = yield* WorkflowRegistry.WorkflowRegistry
  const service = yield* WorkflowService.WorkflowService
  const config = yield* RuntimeConfig.RuntimeConfig
  const deadLetters = yield* Effect.provideService(DeadLetters.make, WorkflowStore, store)
  const workerId = Option.getOrElse(config.workerId, () => randomUUID())

  // --- Limits ---
  //
  // Responsible for the concurrency and rate limits of effects: admission after each claim, releases of
  // waiting rows after settlements and on a period. Called by the effect workers; no fiber, no shutdown.
  const limits = Limits.make(store, registry)

  // --- Attempts and settlement ---
  //
  // Responsible for one attempt at a claimed row (a handler with its timeout, or a timer's input, in the
  // row's span) and what becomes of the row: `Settlement.decide`, the `onDeadLetter` hand-off, the metrics.
  // Called by the handler fibers; stops with them.
  const attempts = Attempts.make({ registry, service, config, takeKeyFailure: limits.takeKeyFailure })

  // --- Commit ---
  //
  // Responsible for the inputs of done rows, applied with their acks in one group transaction fenced by the
  // lease. Called by each worker's commit loop, and once more by its drain at shutdown.
  const commit = Committer.make({ store, registry, service, attempts })

  // --- Worker kinds ---
  //
  // What tells effect workers and timer workers apart, one row each; `WorkerPool.start` starts both alike.
  const kinds: ReadonlyArray<WorkerPool.Kind> = [{
    kind: "effect",
    count: config.effectWorkers,
    lease: config.effectLockDuration,
    wakeups: store.wakeups.effects,
    idle: WorkerPool.effectIdle(config),
    process: attempts.processEffect,
    handlerContext: registry.context,
    hooks: limits.hooks
  }, {
    kind: "timer",
    count: config.timerWorkers,
    lease: config.timerLockDuration,
    wakeups: store.wakeups.timers,
    idle: WorkerPool.timerIdle(store, config, registry.types),
    process: attempts.processTimer,
    handlerContext: Context.empty(),
    hooks: {}
  }]

  const start = startIn({ store, registry, config, workerId, kinds, commit })
  return WorkflowRuntime.of({
    config: () => config,
    workerId: () => workerId,
    workflowCount: () => registry.types.length,
    service,
    start,
    run: (shutdown) => Effect.scoped(Effect.zipRight(start, Effect.ignore(shutdown))),
    fetchDeadLetters: deadLetters.fetch,
    countDeadLetters: deadLetters.count,
    retryDeadLetter: deadLetters.retry,
    fetchTimerDeadLetters: deadLetters.fetchTimers,
    countTimerDeadLetters: deadLetters.countTimers,
    retryTimerDeadLetter: deadLetters.retryTimer
  })
})

/**
 * The runtime with its workers running for the lifetime of the layer, plus
 * the `WorkflowService` and `DeadLetters` it uses. An application is
 * `NodeRuntime.runMain(Layer.launch(app))`; SIGINT/SIGTERM drain the workers.
 *
 * @example
 * ```ts
 * // An application that runs its workflows' effects and timers
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Effect, Layer, Option, Schema } from "effect"
 * import {
 *   Decision,
 *   PgliteClient,
 *   PgWorkflowStore,
 *   RuntimeConfig,
 *   Workflow,
 *   WorkflowRegistry,
 *   WorkflowRuntime,
 *   WorkflowService
 * } from "ironflow"
 *
 * class Send extends Schema.TaggedClass<Send>()("Send", { mailId: Schema.String, to: Schema.String }) {}
 * class Sent extends Schema.TaggedClass<Sent>()("Sent", { mailId: Schema.String }) {}
 * class Requested extends Schema.TaggedClass<Requested>()("Requested", {}) {}
 * class Delivered extends Schema.TaggedClass<Delivered>()("Delivered", {}) {}
 * class Deliver extends Schema.TaggedClass<Deliver>()("Deliver", { to: Schema.String }) {}
 *
 * const Mail = Workflow.make({
 *   type: "mail",
 *   state: Schema.Struct({ sent: Schema.Boolean }),
 *   input: Schema.Union(Send, Sent),
 *   event: Schema.Union(Requested, Delivered),
 *   effect: Deliver,
 *   initialState: { sent: false },
 *   workflowId: { field: "mailId" },
 *   evolve: (_state, event) => ({ sent: event._tag === "Delivered" }),
 *   decide: (_now, _state, input) =>
 *     input._tag === "Send"
 *       ? Decision.accept(new Requested()).pipe(Decision.withEffect(new Deliver({ to: input.to })))
 *       : Decision.accept(new Delivered()),
 *   isTerminal: (state) => state.sent
 * })
 *
 * // The handler runs each effect at least once and routes its result back to the workflow.
 * const MailHandler = Mail.handler((effect, ctx) =>
 *   Effect.log(`mail to ${effect.to}`).pipe(
 *     Effect.as(Option.some(new Sent({ mailId: ctx.workflow.workflowId })))
 *   )
 * )
 *
 * const App = WorkflowRuntime.layer.pipe(
 *   Layer.provide(WorkflowRegistry.layer([MailHandler])),
 *   Layer.provide(RuntimeConfig.layerFromEnv()),
 *   Layer.provide(PgWorkflowStore.layer), // applies the migrations
 *   Layer.provide(PgliteClient.layer()) // in memory here; Database.layerFromEnv() in an application
 * )
 *
 * const program = Effect.gen(function*() {
 *   const service = yield* WorkflowService.WorkflowService
 *   yield* service.execute(Mail, new Send({ mailId: "m-1", to: "ada@example.com" }))
 * })
 *
 * // A service keeps its workers up until SIGINT/SIGTERM: NodeRuntime.runMain(Layer.launch(App))
 * NodeRuntime.runMain(program.pipe(Effect.provide(App)))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  WorkflowRuntime | WorkflowService.WorkflowService | DeadLetters.DeadLetters,
  never,
  WorkflowStore | WorkflowRegistry.WorkflowRegistry
> = Layer.scopedContext(
  Effect.gen(function*() {
    const service = yield* WorkflowService.make
    const runtime = yield* Effect.provideService(make, WorkflowService.WorkflowService, service)
    const deadLetters = yield* DeadLetters.make
    yield* runtime.start
    return Context.make(WorkflowRuntime, runtime).pipe(
      Context.add(WorkflowService.WorkflowService, service),
      Context.add(DeadLetters.DeadLetters, deadLetters)
    )
  })
)

/**
 * What `buildEngine` returns (ironflow's `WorkflowEngine`): the service and
 * the runtime, sharing one registry. Named `Engine` so that it does not read
 * as `@effect/workflow`'s `WorkflowEngine` service, which is another thing.
 *
 * @since 0.1.0
 * @category models
 */
export interface Engine {
  readonly service: WorkflowService.WorkflowService["Type"]
  readonly runtime: WorkflowRuntime["Type"]
}

/**
 * @deprecated Use `Engine` (renamed: `WorkflowEngine` is `@effect/workflow`'s service).
 * @since 0.1.0
 * @category models
 */
export type WorkflowEngine = Engine

/**
 * ironflow's `WorkflowBuilder`: register handlers, set the configuration, then
 * build. A second registration of one workflow type is remembered and every
 * build fails with `DuplicateWorkflowType`. `R` collects what the handlers need.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkflowBuilder<R> {
  readonly register: <R2>(handler: Workflow.WorkflowHandler<Workflow.Any, R2>) => WorkflowBuilder<R | R2>
  readonly registerWithoutEffects: (workflow: Workflow.WithoutEffects) => WorkflowBuilder<R>
  readonly config: (config: RuntimeConfig.Resolved) => WorkflowBuilder<R>
  readonly buildService: () => Effect.Effect<WorkflowService.WorkflowService["Type"], DuplicateWorkflowType, R>
  readonly buildRuntime: () => Effect.Effect<WorkflowRuntime["Type"], DuplicateWorkflowType, R>
  readonly buildEngine: () => Effect.Effect<Engine, DuplicateWorkflowType, R>
}

const makeBuilder = <R>(
  store: WorkflowStore["Type"],
  serviceConfig: WorkflowService.ServiceConfig,
  registrations: ReadonlyArray<Workflow.Registration<any>>,
  runtimeConfig: RuntimeConfig.Resolved
): WorkflowBuilder<R> => {
  const buildEngine = () =>
    Effect.gen(function*() {
      const registry = yield* WorkflowRegistry.make(registrations)
      const service = yield* WorkflowService.make.pipe(
        Effect.provideService(WorkflowRegistry.WorkflowRegistry, registry),
        Effect.provideService(WorkflowService.WorkflowServiceConfig, serviceConfig)
      )
      const runtime = yield* make.pipe(
        Effect.provideService(WorkflowRegistry.WorkflowRegistry, registry),
        Effect.provideService(WorkflowService.WorkflowService, service),
        Effect.provideService(RuntimeConfig.RuntimeConfig, runtimeConfig)
      )
      return { service, runtime }
    }).pipe(Effect.provideService(WorkflowStore, store)) as Effect.Effect<Engine, DuplicateWorkflowType, R>
  return {
    register: (handler) => makeBuilder(store, serviceConfig, [...registrations, handler], runtimeConfig),
    registerWithoutEffects: (workflow) =>
      makeBuilder(store, serviceConfig, [...registrations, workflow], runtimeConfig),
    config: (config) => makeBuilder(store, serviceConfig, registrations, config),
    buildService: () => Effect.map(buildEngine(), (engine) => engine.service),
    buildRuntime: () => Effect.map(buildEngine(), (engine) => engine.runtime),
    buildEngine
  }
}

/**
 * Starts ironflow's builder over a store (for example the value of
 * `yield* WorkflowStore`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const builder = (
  store: WorkflowStore["Type"],
  serviceConfig: WorkflowService.ServiceConfig = WorkflowService.makeConfig()
): WorkflowBuilder<never> => makeBuilder(store, serviceConfig, [], RuntimeConfig.make())
