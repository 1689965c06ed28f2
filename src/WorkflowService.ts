/**
 * Executes inputs against workflow instances and answers queries about them.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as AST from "effect/SchemaAST"
import * as ExecuteOutcome from "./ExecuteOutcome.js"
import { type Codecs, codecsOf } from "./internal/codecs.js"
import * as Spans from "./internal/spans.js"
import type * as Workflow from "./Workflow.js"
import {
  EventDeserializationError,
  type ExecuteError,
  PayloadTooLarge,
  SerializationError,
  type StoreError,
  UnknownEventVersion,
  UnknownWorkflowType
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
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (options: Partial<ServiceConfig> = {}): Layer.Layer<never> =>
  Layer.succeed(WorkflowServiceConfig, makeConfig(options))

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
    StoreError | EventDeserializationError | UnknownEventVersion | UnknownWorkflowType
  >
  /** The current state as JSON, for a workflow type named at run time. */
  readonly fetchLatestStateDynamic: (
    workflowType: string,
    workflowId: string
  ) => Effect.Effect<
    unknown,
    StoreError | EventDeserializationError | UnknownEventVersion | UnknownWorkflowType | SerializationError
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

/** The snapshot matched its version but did not decode: never trusted, replay from the first event instead. */
const SnapshotUnreadable: unique symbol = Symbol("SnapshotUnreadable")

type ReplayError = EventDeserializationError | UnknownEventVersion

/** Folds events (upcast to the current event version) into a state; the snapshot is used only if it decodes. */
const replay = (
  workflow: Workflow.Any,
  codecs: Codecs,
  workflowId: string,
  snapshot: Option.Option<WorkflowStore.Snapshot>,
  events: ReadonlyArray<WorkflowStore.LoadedEvent>
): Either.Either<unknown, ReplayError | typeof SnapshotUnreadable> => {
  let state = workflow.initialState
  if (Option.isSome(snapshot)) {
    const decoded = codecs.state.decode(snapshot.value.state)
    if (Either.isLeft(decoded)) return Either.left(SnapshotUnreadable)
    state = decoded.right
  }
  for (const event of events) {
    const read = codecs.readEvent(event.payload, event.version)
    if (Either.isLeft(read)) {
      return Either.left(
        read.left._tag === "Version"
          ? new UnknownEventVersion({
            workflowType: workflow.type,
            workflowId,
            sequence: event.sequence,
            version: event.version,
            currentVersion: workflow.eventVersion
          })
          : new EventDeserializationError({
            workflowType: workflow.type,
            workflowId,
            sequence: event.sequence,
            detail: read.left.detail
          })
      )
    }
    state = workflow.evolve(state, read.right)
  }
  return Either.right(state)
}

const replayAll = (
  workflow: Workflow.Any,
  codecs: Codecs,
  workflowId: string,
  events: ReadonlyArray<WorkflowStore.LoadedEvent>
): Either.Either<unknown, ReplayError> =>
  replay(workflow, codecs, workflowId, Option.none(), events) as Either.Either<unknown, ReplayError>

const inputTypeOf = (workflow: Workflow.Any, codecs: Codecs, input: unknown): string =>
  codecs.input.tagOf(input) ??
    Option.getOrElse(AST.getIdentifierAnnotation(workflow.input.ast), () => `${workflow.type}.Input`)

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
  const config = yield* WorkflowServiceConfig

  const lookup = (workflowType: string) =>
    Option.match(registry.get(workflowType), {
      onNone: () => Effect.fail(new UnknownWorkflowType({ workflowType })),
      onSome: Effect.succeed
    })

  const observe = (
    workflow: Workflow.Any,
    codecs: Codecs,
    workflowId: string,
    input: unknown,
    encodedInput: Effect.Effect<unknown, SerializationError>,
    outcome: WorkflowStore.ObservationOutcome
  ) =>
    Effect.map(encodedInput, (payload): WorkflowStore.InputObservation => ({
      workflowType: workflow.type,
      workflowId,
      inputType: inputTypeOf(workflow, codecs, input),
      payload,
      outcome
    }))

  const checkSize = (workflowType: string, subject: PayloadTooLarge["subject"], json: unknown) => {
    if (config.maxPayloadBytes === 0) return Effect.void
    // Cheap upper bound first: a JSON string of n UTF-16 units is at most 3n bytes.
    const text = JSON.stringify(json) ?? ""
    if (text.length * 3 <= config.maxPayloadBytes) return Effect.void
    const bytes = Buffer.byteLength(text)
    return bytes <= config.maxPayloadBytes
      ? Effect.void
      : Effect.fail(new PayloadTooLarge({ workflowType, subject, bytes, limit: config.maxPayloadBytes }))
  }

  const execute = <W extends Workflow.Any>(
    workflow: W,
    input: Workflow.Input<W>,
    inputChecked = false
  ): Effect.Effect<ExecuteOutcome.ExecuteOutcome<Workflow.Rejection<W>>, ExecuteError> =>
    Effect.gen(function*() {
      yield* lookup(workflow.type)
      const codecs = codecsOf(workflow)
      const workflowType = workflow.type
      const workflowId = workflow.workflowId(input)
      const uniqueKey = Option.fromNullable(workflow.uniqueKey(input))
      // The input's stored form, encoded at most once (size check, observations).
      let encoded: { readonly json: unknown } | undefined
      const encodedInput = Effect.suspend(() =>
        encoded !== undefined
          ? Effect.succeed(encoded.json)
          : Effect.mapError(codecs.input.encode(input), serialization(workflowType, "input", "encode")).pipe(
            Effect.tap((json) => {
              encoded = { json }
            })
          )
      )
      if (config.maxPayloadBytes > 0 && !inputChecked) {
        yield* checkSize(workflowType, "input", yield* encodedInput)
      }

      const result = yield* store.withInstance(
        { workflowType, workflowId, uniqueKey, snapshotVersion: workflow.stateVersion },
        (locked) =>
          Effect.gen(function*() {
            const replayed = replay(workflow, codecs, workflowId, locked.snapshot, locked.events)
            const state = Either.isLeft(replayed) && replayed.left === SnapshotUnreadable
              ? yield* replayAll(workflow, codecs, workflowId, yield* locked.loadAllEvents)
              : yield* (replayed as Either.Either<unknown, ReplayError>)
            const decision = workflow.decide(DateTime.unsafeMake(locked.now), state, input)
            if (decision._tag === "Reject") {
              return WorkflowStore.UnitOfWork.Rollback({ value: ExecuteOutcome.Rejected(decision.reason) })
            }
            let finalState = state
            for (const event of decision.events) finalState = workflow.evolve(finalState, event)
            const encodeAll = (subject: "event" | "effect" | "input", values: ReadonlyArray<unknown>) =>
              Effect.forEach(values, (value) =>
                Effect.mapError(codecs[subject].encode(value), serialization(workflowType, subject, "encode")).pipe(
                  Effect.tap((json) => checkSize(workflowType, subject === "input" ? "timer input" : subject, json))
                ))
            const events = yield* encodeAll("event", decision.events)
            const effects = yield* encodeAll("effect", decision.effects)
            const timerInputs = yield* encodeAll(
              "input",
              decision.timers.map((t) =>
                t.input
              )
            )
            const observation = config.recordInputObservations
              ? Option.some(
                yield* observe(
                  workflow,
                  codecs,
                  workflowId,
                  input,
                  encodedInput,
                  WorkflowStore.ObservationOutcome.Accepted()
                )
              )
              : Option.none()
            const lastSequence = locked.nextSequence - 1 + events.length
            const snapshotDue = config.snapshotEvery > 0 &&
              Math.floor(lastSequence / config.snapshotEvery) >
                Math.floor((locked.nextSequence - 1) / config.snapshotEvery)
            const snapshot = snapshotDue
              ? Option.some({
                sequence: lastSequence,
                state: yield* Effect.mapError(
                  codecs.state.encode(finalState),
                  serialization(workflowType, "state", "encode")
                ),
                version: workflow.stateVersion
              })
              : Option.none()
            return WorkflowStore.UnitOfWork.Commit({
              writes: {
                events,
                eventVersion: workflow.eventVersion,
                effects,
                cancelTimers: decision.cancelTimers,
                timers: decision.timers.map((timer, i) => ({
                  delay: timer.delay,
                  key: timer.key,
                  input: timerInputs[i]
                })),
                completed: workflow.isTerminal(finalState),
                observation,
                snapshot
              },
              value: ExecuteOutcome.Accepted({ eventsAppended: events.length }) as ExecuteOutcome.ExecuteOutcome<
                Workflow.Rejection<W>
              >
            })
          })
      )

      if (result._tag === "Completed") {
        if (config.recordInputObservations) {
          yield* store.recordObservation(
            yield* observe(
              workflow,
              codecs,
              workflowId,
              input,
              encodedInput,
              WorkflowStore.ObservationOutcome.AlreadyCompleted()
            )
          )
        }
        return ExecuteOutcome.AlreadyCompleted
      }
      const outcome = result.value
      if (outcome._tag === "Rejected" && config.recordInputObservations) {
        const rejection = yield* Effect.mapError(
          codecs.rejection.encode(outcome.reason),
          serialization(workflowType, "rejection", "encode")
        )
        yield* store.recordObservation(
          yield* observe(
            workflow,
            codecs,
            workflowId,
            input,
            encodedInput,
            WorkflowStore.ObservationOutcome.Rejected({ rejection })
          )
        )
      }
      return outcome
    }).pipe(
      Effect.tap((outcome) =>
        Metric.increment(Metrics.tagged(Metrics.executes, { workflow_type: workflow.type, outcome: outcome._tag }))
      ),
      Spans.withSpan("ironflow.execute", {
        attributes: { "ironflow.workflow_type": workflow.type }
      })
    )

  const executeDynamic = (workflowType: string, json: unknown) =>
    Effect.gen(function*() {
      const entry = yield* lookup(workflowType)
      const codecs = codecsOf(entry.workflow)
      yield* checkSize(workflowType, "input", json)
      const input = yield* Effect.mapError(codecs.input.decode(json), serialization(workflowType, "input", "decode"))
      const outcome = yield* execute(entry.workflow, input, true)
      if (outcome._tag !== "Rejected") return outcome as ExecuteOutcome.ExecuteOutcome<unknown>
      const rejection = yield* Effect.mapError(
        codecs.rejection.encode(outcome.reason),
        serialization(workflowType, "rejection", "encode")
      )
      return ExecuteOutcome.Rejected(rejection)
    })

  const latestState = (workflow: Workflow.Any, workflowId: string) =>
    Effect.gen(function*() {
      const codecs = codecsOf(workflow)
      const loaded = yield* store.loadState(workflow.type, workflowId, workflow.stateVersion)
      const replayed = replay(workflow, codecs, workflowId, loaded.snapshot, loaded.events)
      if (Either.isLeft(replayed) && replayed.left === SnapshotUnreadable) {
        const all = yield* store.loadState(workflow.type, workflowId, undefined)
        return yield* replayAll(workflow, codecs, workflowId, all.events)
      }
      return yield* (replayed as Either.Either<unknown, ReplayError>)
    })

  return WorkflowService.of({
    config,
    execute: (workflow, input) => execute(workflow, input),
    executeDynamic,
    listWorkflows: (workflowType, limit = 100, offset = 0) => store.listInstances({ workflowType, limit, offset }),
    fetchWorkflowEvents: store.fetchEvents,
    fetchLatestState: (workflow, workflowId) =>
      Effect.zipRight(lookup(workflow.type), latestState(workflow, workflowId)) as Effect.Effect<
        any,
        StoreError | EventDeserializationError | UnknownEventVersion | UnknownWorkflowType
      >,
    fetchLatestStateDynamic: (workflowType, workflowId) =>
      Effect.gen(function*() {
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
