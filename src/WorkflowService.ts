/**
 * Executes inputs against workflow instances and answers queries about them.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as ExecuteOutcome from "./ExecuteOutcome.js"
import { codecsOf } from "./internal/codecs.js"
import * as GroupCommit from "./internal/groupCommit.js"
import * as Spans from "./internal/spans.js"
import { jsonProblem } from "./internal/storable.js"
import type * as Workflow from "./Workflow.js"
import {
  CancelNotSupported,
  type EventDeserializationError,
  type ExecuteError,
  SerializationError,
  type StoreError,
  type UnknownEventVersion,
  UnknownWorkflowType,
  UnstorableValue,
  WorkflowFunctionError
} from "./WorkflowError.js"
import * as Metrics from "./WorkflowMetrics.js"
import { WorkflowRegistry } from "./WorkflowRegistry.js"
import * as WorkflowStore from "./WorkflowStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface ServiceConfig {
  /**
   * Write every input to `ironflow.input_observations` with its outcome
   * (accepted, rejected with the rejection, already completed). Default false.
   */
  readonly recordInputObservations: boolean
  /**
   * Store the state on the instance row every this many events, so an execute
   * reads the snapshot plus the newer events instead of the whole history.
   * 0 turns snapshots off. Default 100.
   */
  readonly snapshotEvery: number
  /**
   * Largest encoded input, event, effect or timer input, in bytes of JSON;
   * a larger one fails the execute with `PayloadTooLarge` and writes nothing.
   * Default 1 MiB; 0 turns the check off.
   */
  readonly maxPayloadBytes: number
}

/**
 * @since 0.1.0
 * @category tags
 */
export class WorkflowServiceConfig extends Context.Reference<WorkflowServiceConfig>()(
  "ironflow/WorkflowServiceConfig",
  { defaultValue: (): ServiceConfig => makeConfig() }
) {}

/**
 * @since 0.1.0
 * @category constructors
 */
export const makeConfig = (options: Partial<ServiceConfig> = {}): ServiceConfig => ({
  recordInputObservations: options.recordInputObservations ?? false,
  snapshotEvery: Math.max(0, Math.floor(options.snapshotEvery ?? 100)),
  maxPayloadBytes: Math.max(0, Math.floor(options.maxPayloadBytes ?? 1024 * 1024))
})

/**
 * The service configuration from options, defaults for the rest (see
 * `makeConfig`).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerWith = (options: Partial<ServiceConfig> = {}): Layer.Layer<never> =>
  Layer.succeed(WorkflowServiceConfig, makeConfig(options))

/**
 * The service configuration read from `Config` (names below; in constant
 * case with the `IRONFLOW_` prefix when read by `layerFromEnv`). Fields left
 * out take their defaults.
 *
 * @since 0.2.0
 * @category configuration
 */
export const config: Config.Config<Partial<ServiceConfig>> = Config.all({
  recordInputObservations: Config.option(Config.boolean("recordInputObservations")).pipe(
    Config.withDescription("Record every input with its outcome in ironflow.input_observations (default false)")
  ),
  snapshotEvery: Config.option(Config.integer("snapshotEvery")).pipe(
    Config.withDescription("Store the state every this many events; 0 turns snapshots off (default 100)")
  ),
  maxPayloadBytes: Config.option(Config.integer("maxPayloadBytes")).pipe(
    Config.withDescription(
      "Largest encoded input, event, effect or timer input in bytes; 0 turns it off (default 1 MiB)"
    )
  )
}).pipe(
  Config.map((c): Partial<ServiceConfig> => ({
    ...Option.match(c.recordInputObservations, { onNone: () => ({}), onSome: (v) => ({ recordInputObservations: v }) }),
    ...Option.match(c.snapshotEvery, { onNone: () => ({}), onSome: (v) => ({ snapshotEvery: v }) }),
    ...Option.match(c.maxPayloadBytes, { onNone: () => ({}), onSome: (v) => ({ maxPayloadBytes: v }) })
  }))
)

/**
 * The service configuration with its options read from `Config`, as
 * `PgClient.layerConfig` reads its: either a whole `Config` (such as
 * `config`) or a record of one `Config` per field, e.g.
 * `layerConfig({ snapshotEvery: Config.integer("SNAPSHOT_EVERY") })`.
 *
 * Before 0.2.0 this name took plain options: that is `layerWith` now.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Partial<ServiceConfig>>
): Layer.Layer<never, ConfigError.ConfigError> =>
  Layer.effect(WorkflowServiceConfig, Effect.map(Config.unwrap(options), makeConfig))

/**
 * Reads `IRONFLOW_RECORD_INPUT_OBSERVATIONS`, `IRONFLOW_SNAPSHOT_EVERY` and
 * `IRONFLOW_MAX_PAYLOAD_BYTES` (see `config`); `overrides` win over the
 * environment.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerFromEnv = (overrides: Partial<ServiceConfig> = {}): Layer.Layer<never, ConfigError.ConfigError> =>
  Layer.effect(
    WorkflowServiceConfig,
    Effect.map(
      Effect.withConfigProvider(
        config,
        ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase, ConfigProvider.nested("IRONFLOW"))
      ),
      (fromEnv) => makeConfig({ ...fromEnv, ...overrides })
    )
  )

/**
 * @since 0.1.0
 * @category tags
 */
export class WorkflowService extends Context.Tag("ironflow/WorkflowService")<WorkflowService, {
  readonly config: ServiceConfig
  /**
   * Executes an input on its instance (`workflow.workflowId(input)`): in one
   * transaction the instance is locked, its state rebuilt, `decide` called
   * with the `Clock` time, and the accepted events, effects and timers
   * written. A rejected input writes nothing (a rejected first input leaves no
   * instance). A completed instance answers `AlreadyCompleted` without
   * calling `decide`.
   */
  readonly execute: <W extends Workflow.Any>(
    workflow: W,
    input: Workflow.Input<W>
  ) => Effect.Effect<ExecuteOutcome.ExecuteOutcome<Workflow.Rejection<W>>, ExecuteError>
  /**
   * Cancels an instance from outside: executes the workflow's cancellation
   * input (`cancel` on its definition, built from `reason`) on instance
   * `workflowId`, like any other input, so `decide` chooses what cancelling
   * means (compensate, cancel timers, complete) or rejects it. The outcome is
   * that of `execute` (a completed instance answers `AlreadyCompleted`; on an
   * instance that does not exist yet, `decide` sees the initial state). A
   * workflow that declares no cancellation input fails with
   * `CancelNotSupported`, and nothing is written.
   */
  readonly cancel: <W extends Workflow.Any>(
    workflow: W,
    workflowId: string,
    reason: string
  ) => Effect.Effect<ExecuteOutcome.ExecuteOutcome<Workflow.Rejection<W>>, ExecuteError | CancelNotSupported>
  /**
   * Executes a JSON input (the stored shape, `{"type": "Variant", ...}`) on a
   * workflow type named at run time; the rejection comes back as JSON. An
   * input that fails its Schema is a `SerializationError` and writes nothing.
   */
  readonly executeDynamic: (
    workflowType: string,
    input: unknown
  ) => Effect.Effect<ExecuteOutcome.ExecuteOutcome<unknown>, ExecuteError>
  /** Instances, most recently active first (default limit 100). */
  readonly listWorkflows: (
    workflowType?: string | undefined,
    limit?: number,
    offset?: number
  ) => Effect.Effect<ReadonlyArray<WorkflowStore.WorkflowInstanceSummary>, StoreError>
  /** An instance's events in order (empty for an unknown instance). */
  readonly fetchWorkflowEvents: (
    workflowType: string,
    workflowId: string
  ) => Effect.Effect<ReadonlyArray<WorkflowStore.StoredEvent>, StoreError>
  /** The current state, rebuilt without taking a lock; the initial state for an unknown instance. */
  readonly fetchLatestState: <W extends Workflow.Any>(
    workflow: W,
    workflowId: string
  ) => Effect.Effect<
    Workflow.State<W>,
    StoreError | EventDeserializationError | UnknownEventVersion | UnknownWorkflowType | WorkflowFunctionError
  >
  /** The current state as JSON, for a workflow type named at run time. */
  readonly fetchLatestStateDynamic: (
    workflowType: string,
    workflowId: string
  ) => Effect.Effect<
    unknown,
    | StoreError
    | EventDeserializationError
    | UnknownEventVersion
    | UnknownWorkflowType
    | WorkflowFunctionError
    | SerializationError
  >
  /** The input observations of an instance, oldest first. */
  readonly fetchObservations: (
    workflowType: string,
    workflowId: string
  ) => Effect.Effect<ReadonlyArray<WorkflowStore.StoredObservation>, StoreError>
}>() {}

const serialization = (
  workflowType: string,
  subject: SerializationError["subject"],
  direction: SerializationError["direction"]
) =>
(detail: string) => new SerializationError({ workflowType, subject, direction, detail })

/** Most inputs one group transaction applies. */
const maxGroup = 256

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<
  WorkflowService["Type"],
  never,
  WorkflowStore.WorkflowStore | WorkflowRegistry
> = Effect.gen(function*() {
  const store = yield* WorkflowStore.WorkflowStore
  const registry = yield* WorkflowRegistry
  const serviceConfig = yield* WorkflowServiceConfig

  const traits = GroupCommit.traitsFrom(registry.get)
  const lookup = (workflowType: string) =>
    Option.match(registry.get(workflowType), {
      onNone: () => Effect.fail(new UnknownWorkflowType({ workflowType })),
      onSome: Effect.succeed
    })

  // Concurrent executes share a transaction: the first caller leads and applies every input that arrived
  // while the previous group was in flight; the others wait for their result. No fixed delay: a lone execute
  // is one transaction, as before.
  const waiting: Array<
    { readonly item: GroupCommit.Item; readonly result: Deferred.Deferred<GroupCommit.ItemResult, StoreError> }
  > = []
  let leading = false
  const applyAll = (batch: typeof waiting) =>
    GroupCommit.apply(store, serviceConfig, batch.map((w) => w.item), undefined, traits).pipe(
      Effect.catchAll((error) =>
        // One input may be what the database refused: apply each alone, so it fails alone.
        batch.length > 1 && !GroupCommit.isTransient(error)
          ? Effect.forEach(batch, (w) =>
            Effect.either(GroupCommit.apply(store, serviceConfig, [w.item], undefined, traits)))
          : Effect.fail(error)
      ),
      Effect.exit,
      Effect.flatMap((exit) =>
        Effect.forEach(batch, (w, i) => {
          if (exit._tag === "Failure") return Deferred.failCause(w.result, exit.cause)
          const result = exit.value[i] as
            | GroupCommit.ItemResult
            | Either.Either<ReadonlyArray<GroupCommit.ItemResult>, StoreError>
          if (Either.isEither(result)) {
            return Either.isLeft(result)
              ? Deferred.fail(w.result, result.left)
              : Deferred.succeed(w.result, result.right[0])
          }
          return Deferred.succeed(w.result, result)
        }, { discard: true })
      )
    )
  const lead = Effect.gen(function*() {
    while (waiting.length > 0) yield* applyAll(waiting.splice(0, maxGroup))
  }).pipe(
    Effect.ensuring(Effect.sync(() => {
      leading = false
    })),
    Effect.uninterruptible
  )
  const submit = Effect.fnUntraced(function*(item: GroupCommit.Item) {
    const result = yield* Deferred.make<GroupCommit.ItemResult, StoreError>()
    waiting.push({ item, result })
    if (!leading) {
      leading = true
      yield* lead
    }
    return yield* Deferred.await(result)
  })

  const execute = <W extends Workflow.Any>(
    workflow: W,
    input: Workflow.Input<W>
  ): Effect.Effect<ExecuteOutcome.ExecuteOutcome<Workflow.Rejection<W>>, ExecuteError> =>
    Effect.gen(function*() {
      yield* lookup(workflow.type)
      // The span of this execute (only with a tracer): what its decision enqueues carries its trace context.
      const span = yield* Spans.current
      const result = yield* submit(span === undefined ? { workflow, input } : { workflow, input, span })
      switch (result._tag) {
        case "Done":
          return result.outcome as ExecuteOutcome.ExecuteOutcome<Workflow.Rejection<W>>
        case "Failed":
          return yield* Effect.fail(result.error)
        case "Fenced":
          return yield* Effect.dieMessage("an execute without a row was fenced")
      }
      return result satisfies never
    }).pipe(
      Effect.tap((outcome) =>
        Metric.increment(Metrics.tagged(Metrics.executes, { workflow_type: workflow.type, outcome: outcome._tag }))
      ),
      Spans.withSpan("ironflow.execute", {
        attributes: { "ironflow.workflow_type": workflow.type }
      })
    )

  const cancel = <W extends Workflow.Any>(workflow: W, workflowId: string, reason: string) =>
    Effect.gen(function*() {
      yield* lookup(workflow.type)
      const build = workflow.cancel
      if (build === undefined) {
        return yield* new CancelNotSupported({
          workflowType: workflow.type,
          workflowId,
          detail: "the workflow declares no cancellation input (`cancel` on its definition)"
        })
      }
      const input: Workflow.Input<W> = yield* Effect.try({
        try: () => build(reason, workflowId),
        catch: (cause) =>
          new WorkflowFunctionError({ workflowType: workflow.type, workflowId, function: "cancel", cause })
      })
      const owner = yield* Effect.try({
        try: () => workflow.workflowId(input),
        catch: (cause) => new WorkflowFunctionError({ workflowType: workflow.type, function: "workflowId", cause })
      })
      if (owner !== workflowId) {
        return yield* new CancelNotSupported({
          workflowType: workflow.type,
          workflowId,
          detail: `its cancellation input belongs to instance '${owner}' (build it from the workflow id it is given)`
        })
      }
      return yield* execute(workflow, input)
    }).pipe(Effect.annotateLogs({ workflowType: workflow.type, workflowId }))

  const executeDynamic = Effect.fnUntraced(function*(workflowType: string, json: unknown) {
    const entry = yield* lookup(workflowType)
    const codecs = codecsOf(entry.workflow)
    const problem = jsonProblem(json)
    if (problem !== undefined) {
      return yield* Effect.fail(new UnstorableValue({ workflowType, subject: "input", detail: problem }))
    }
    const input = yield* Effect.mapError(codecs.input.decode(json), serialization(workflowType, "input", "decode"))
    const outcome = yield* execute(entry.workflow, input)
    if (outcome._tag !== "Rejected") return outcome as ExecuteOutcome.ExecuteOutcome<unknown>
    const rejection = yield* Effect.mapError(
      codecs.rejection.encode(outcome.reason),
      serialization(workflowType, "rejection", "encode")
    )
    return ExecuteOutcome.Rejected(rejection)
  })

  const latestState = Effect.fnUntraced(function*(workflow: Workflow.Any, workflowId: string) {
    const loaded = yield* store.loadState(workflow.type, workflowId, workflow.stateVersion)
    return yield* GroupCommit.rebuild(
      workflow,
      workflowId,
      loaded.snapshot,
      loaded.events,
      Effect.map(store.loadState(workflow.type, workflowId, undefined), (all) => all.events)
    )
  })

  return WorkflowService.of({
    config: serviceConfig,
    execute: (workflow, input) => execute(workflow, input),
    cancel,
    executeDynamic,
    listWorkflows: (workflowType, limit = 100, offset = 0) => store.listInstances({ workflowType, limit, offset }),
    fetchWorkflowEvents: store.fetchEvents,
    fetchLatestState: (workflow, workflowId) =>
      Effect.zipRight(lookup(workflow.type), latestState(workflow, workflowId)) as Effect.Effect<
        any,
        StoreError | EventDeserializationError | UnknownEventVersion | UnknownWorkflowType | WorkflowFunctionError
      >,
    fetchLatestStateDynamic: Effect.fnUntraced(function*(workflowType: string, workflowId: string) {
      const entry = yield* lookup(workflowType)
      const state = yield* latestState(entry.workflow, workflowId)
      return yield* Effect.mapError(
        codecsOf(entry.workflow).state.encode(state),
        serialization(workflowType, "state", "encode")
      )
    }),
    fetchObservations: store.fetchObservations
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<WorkflowService, never, WorkflowStore.WorkflowStore | WorkflowRegistry> = Layer.effect(
  WorkflowService,
  make
)
