/**
 * Applies many inputs (handler results, timer firings, concurrent executes)
 * in one transaction: every instance they name is locked once, in one fixed
 * order, its state rebuilt once, `decide` called per input in arrival order,
 * and all decisions, observations and the acks of the rows the inputs came
 * from written in one statement. One input's trouble (a rejection, a
 * definition that throws, a value that cannot be stored, an unreadable event,
 * a completed instance) settles that input alone.
 */
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as AST from "effect/SchemaAST"
import type * as Tracer from "effect/Tracer"
import * as ExecuteOutcome from "../ExecuteOutcome.js"
import type * as Workflow from "../Workflow.js"
import {
  EventDeserializationError,
  type ExecuteError,
  PayloadTooLarge,
  SerializationError,
  type StoreError,
  UniqueKeyConflict,
  UnknownEventVersion,
  UnstorableValue,
  WorkflowFunctionError
} from "../WorkflowError.js"
import type * as WorkflowStore from "../WorkflowStore.js"
import { type Codecs, codecsOf } from "./codecs.js"
import { jsonProblem, textProblem } from "./storable.js"
import * as TraceContext from "./traceContext.js"

/** One input to apply. @internal */
export interface Item {
  readonly workflow: Workflow.Any
  readonly input: unknown
  /** The claimed row the input came from: applied only while the row is still held, and acked with it. */
  readonly row?: string | undefined
  /**
   * The span this input is executed in (only when a tracer is installed): the effects and timers its
   * decision writes carry its trace context, so what runs them joins its trace.
   */
  readonly span?: Tracer.AnySpan | undefined
}

/** What became of one input. @internal */
export type ItemResult =
  | { readonly _tag: "Done"; readonly outcome: ExecuteOutcome.ExecuteOutcome<unknown> }
  | { readonly _tag: "Failed"; readonly error: ExecuteError }
  /** Its row is no longer held by this worker (lease lost, settled elsewhere): nothing was applied. */
  | { readonly _tag: "Fenced" }

/** The rows of one worker a group acks, fenced by the lease. @internal */
export interface Fence {
  readonly kind: WorkflowStore.QueueKind
  readonly lockedBy: string
  /** Rows done without an input to apply: marked processed in the same transaction. */
  readonly completed: ReadonlyArray<string>
}

/** @internal */
export interface Config {
  readonly recordInputObservations: boolean
  readonly snapshotEvery: number
  readonly maxPayloadBytes: number
}

/** Latest instant a `Date` (and so a timer) can hold. */
const maxTime = 8.64e15

type Failure = ExecuteError

const failed = (error: Failure): ItemResult => ({ _tag: "Failed", error })

const guard = <A>(
  workflow: Workflow.Any,
  workflowId: string | undefined,
  fn: WorkflowFunctionError["function"],
  run: () => A
): Either.Either<A, WorkflowFunctionError> => {
  try {
    return Either.right(run())
  } catch (cause) {
    return Either.left(
      new WorkflowFunctionError({
        workflowType: workflow.type,
        ...(workflowId === undefined ? {} : { workflowId }),
        function: fn,
        cause
      })
    )
  }
}

const inputTypeOf = (workflow: Workflow.Any, codecs: Codecs, input: unknown): string =>
  codecs.input.tagOf(input) ??
    Option.getOrElse(AST.getIdentifierAnnotation(workflow.input.ast), () => `${workflow.type}.Input`)

/** Encodes a value for storage: refused when it cannot be stored, too large, or does not encode. */
const encoder = (config: Config) =>
(
  workflow: Workflow.Any,
  codecs: Codecs,
  subject: "input" | "event" | "effect" | "timer input" | "state" | "rejection",
  value: unknown
): Either.Either<unknown, Failure> => {
  // Checked before encoding: a value nested thousands deep would overflow the encoder's stack.
  const problem = jsonProblem(value)
  if (problem !== undefined) {
    return Either.left(new UnstorableValue({ workflowType: workflow.type, subject, detail: problem }))
  }
  const codec = subject === "timer input" ? codecs.input : codecs[subject]
  const encoded = codec.encode(value)
  if (Either.isLeft(encoded)) {
    return Either.left(
      new SerializationError({
        workflowType: workflow.type,
        subject: subject === "timer input" ? "input" : subject,
        direction: "encode",
        detail: encoded.left
      })
    )
  }
  if (config.maxPayloadBytes > 0 && subject !== "state" && subject !== "rejection") {
    // Cheap upper bound first: a JSON string of n UTF-16 units is at most 3n bytes.
    const text = JSON.stringify(encoded.right) ?? ""
    if (text.length * 3 > config.maxPayloadBytes) {
      const bytes = Buffer.byteLength(text)
      if (bytes > config.maxPayloadBytes) {
        return Either.left(
          new PayloadTooLarge({ workflowType: workflow.type, subject, bytes, limit: config.maxPayloadBytes })
        )
      }
    }
  }
  return Either.right(encoded.right)
}

/** An input with its instance, as prepared before the transaction. */
interface Prepared {
  readonly index: number
  readonly item: Item
  readonly codecs: Codecs
  readonly slot: number
  /** The stored form of the input, for observations. */
  readonly json: unknown
}

/** One instance of the group while its inputs are applied. */
interface Slot {
  readonly workflow: Workflow.Any
  readonly codecs: Codecs
  readonly request: WorkflowStore.InstanceRequest
  state: unknown
  loaded: boolean
  /** Replaying it failed: every input on it fails with this. */
  broken: Failure | undefined
  completed: boolean
  accepted: number
  readonly events: Array<unknown>
  readonly effects: Array<unknown>
  /** The trace context of each effect, once an input with a span wrote some (aligned with `effects`). */
  effectTraces: Array<WorkflowStore.TraceContext | undefined> | undefined
  readonly effectTraits: Array<WorkflowStore.EffectTraits>
  readonly cancels: Array<string>
  readonly timers: Array<WorkflowStore.TimerRequest>
}

type ReplayFailure = EventDeserializationError | UnknownEventVersion

/** The snapshot matched its version but did not decode: replay from the first event instead. */
const SnapshotUnreadable: unique symbol = Symbol("SnapshotUnreadable")

const replay = (
  workflow: Workflow.Any,
  codecs: Codecs,
  workflowId: string,
  snapshot: Option.Option<WorkflowStore.Snapshot>,
  events: ReadonlyArray<WorkflowStore.LoadedEvent>
): Either.Either<unknown, ReplayFailure | WorkflowFunctionError | typeof SnapshotUnreadable> => {
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
    const next = guard(workflow, workflowId, "evolve", () => workflow.evolve(state, read.right))
    if (Either.isLeft(next)) return Either.left(next.left)
    state = next.right
  }
  return Either.right(state)
}

/**
 * Rebuilds a state from a snapshot and the events after it, falling back to
 * every event when the snapshot does not decode.
 *
 * @internal
 */
export const rebuild = <E>(
  workflow: Workflow.Any,
  workflowId: string,
  snapshot: Option.Option<WorkflowStore.Snapshot>,
  events: ReadonlyArray<WorkflowStore.LoadedEvent>,
  loadAllEvents: Effect.Effect<ReadonlyArray<WorkflowStore.LoadedEvent>, E>
): Effect.Effect<unknown, E | ReplayFailure | WorkflowFunctionError> => {
  const codecs = codecsOf(workflow)
  const replayed = replay(workflow, codecs, workflowId, snapshot, events)
  if (Either.isRight(replayed)) return Effect.succeed(replayed.right)
  if (replayed.left !== SnapshotUnreadable) return Effect.fail(replayed.left)
  return Effect.flatMap(loadAllEvents, (all) => {
    const again = replay(workflow, codecs, workflowId, Option.none(), all)
    return Either.isRight(again)
      ? Effect.succeed(again.right)
      : Effect.fail(again.left as ReplayFailure | WorkflowFunctionError)
  })
}

/** The instance an input names, checked before any SQL sees it. */
const instanceOf = (item: Item): Either.Either<WorkflowStore.InstanceRequest, Failure> => {
  const { workflow } = item
  const id = guard(workflow, undefined, "workflowId", () => workflow.workflowId(item.input))
  if (Either.isLeft(id)) return Either.left(id.left)
  const workflowId = id.right
  const idProblem = typeof workflowId === "string" ? textProblem(workflowId) : "is not a string"
  if (idProblem !== undefined) {
    return Either.left(
      new UnstorableValue({ workflowType: workflow.type, subject: "workflow id", detail: `the id ${idProblem}` })
    )
  }
  const key = guard(workflow, workflowId, "uniqueKey", () => workflow.uniqueKey(item.input))
  if (Either.isLeft(key)) return Either.left(key.left)
  const keyProblem = key.right === undefined || key.right === null ? undefined : textProblem(key.right)
  if (keyProblem !== undefined) {
    return Either.left(
      new UnstorableValue({ workflowType: workflow.type, subject: "unique key", detail: `the key ${keyProblem}` })
    )
  }
  return Either.right({
    workflowType: workflow.type,
    workflowId,
    uniqueKey: Option.fromNullable(key.right),
    snapshotVersion: workflow.stateVersion
  })
}

/**
 * The priority and limit names of a new effect of a workflow type, given the
 * priority its decision chose (from the registry's handlers; without one,
 * the decision's priority alone).
 *
 * @internal
 */
export type Traits = (
  workflowType: string,
  effect: unknown,
  priority: number | undefined
) => WorkflowStore.EffectTraits

/**
 * The traits of the handlers of a registry.
 *
 * @internal
 */
export const traitsFrom = (
  get: (
    workflowType: string
  ) => Option.Option<{ readonly traits: (effect: unknown, priority: number | undefined) => WorkflowStore.EffectTraits }>
): Traits =>
(workflowType, effect, priority) =>
  Option.match(get(workflowType), {
    onNone: () => noLimits(workflowType, effect, priority),
    onSome: (entry) => entry.traits(effect, priority)
  })

const noLimits: Traits = (_type, _effect, priority) => ({ priority: priority ?? 0, limitKey: null, rateKey: null })

/** A decision's writes, encoded and checked; nothing of it is kept if any part fails. */
interface Encoded {
  readonly state: unknown
  readonly completed: boolean
  readonly events: ReadonlyArray<unknown>
  readonly effects: ReadonlyArray<unknown>
  readonly effectTraits: ReadonlyArray<WorkflowStore.EffectTraits>
  readonly cancels: ReadonlyArray<string>
  readonly timers: ReadonlyArray<WorkflowStore.TimerRequest>
}

const encodeAccepted = (
  encode: ReturnType<typeof encoder>,
  traits: Traits,
  slot: Slot,
  decision: Extract<ReturnType<Workflow.Any["decide"]>, { readonly _tag: "Accept" }>,
  now: number
): Either.Either<Encoded, Failure> => {
  const { codecs, workflow } = slot
  const workflowId = slot.request.workflowId
  let state = slot.state
  for (const event of decision.events) {
    const next = guard(workflow, workflowId, "evolve", () => workflow.evolve(state, event))
    if (Either.isLeft(next)) return Either.left(next.left)
    state = next.right
  }
  const completed = guard(workflow, workflowId, "isTerminal", () => workflow.isTerminal(state))
  if (Either.isLeft(completed)) return Either.left(completed.left)
  const events: Array<unknown> = []
  for (const event of decision.events) {
    const json = encode(workflow, codecs, "event", event)
    if (Either.isLeft(json)) return Either.left(json.left)
    events.push(json.right)
  }
  const effects: Array<unknown> = []
  const effectTraits: Array<WorkflowStore.EffectTraits> = []
  for (let i = 0; i < decision.effects.length; i++) {
    const effect = decision.effects[i]
    const json = encode(workflow, codecs, "effect", effect)
    if (Either.isLeft(json)) return Either.left(json.left)
    effects.push(json.right)
    effectTraits.push(traits(workflow.type, effect, decision.effectPriorities?.[i]))
  }
  for (const key of decision.cancelTimers) {
    const problem = textProblem(key)
    if (problem !== undefined) {
      return Either.left(
        new UnstorableValue({ workflowType: workflow.type, subject: "timer key", detail: `the key ${problem}` })
      )
    }
  }
  const timers: Array<WorkflowStore.TimerRequest> = []
  for (const timer of decision.timers) {
    const millis = Duration.toMillis(timer.delay)
    if (!Number.isFinite(millis) || now + millis > maxTime) {
      return Either.left(
        new UnstorableValue({
          workflowType: workflow.type,
          subject: "timer delay",
          detail: `a delay of ${Duration.format(timer.delay)} ends past the latest representable time`
        })
      )
    }
    if (Option.isSome(timer.key)) {
      const problem = textProblem(timer.key.value)
      if (problem !== undefined) {
        return Either.left(
          new UnstorableValue({ workflowType: workflow.type, subject: "timer key", detail: `the key ${problem}` })
        )
      }
    }
    const json = encode(workflow, codecs, "timer input", timer.input)
    if (Either.isLeft(json)) return Either.left(json.left)
    timers.push({ delay: timer.delay, key: timer.key, input: json.right, priority: timer.priority })
  }
  return Either.right({
    state,
    completed: completed.right,
    events,
    effects,
    effectTraits,
    cancels: decision.cancelTimers,
    timers
  })
}

type InstanceName = { readonly workflowType: string; readonly workflowId: string }

const sameInstance = (a: InstanceName, b: InstanceName) =>
  a.workflowType === b.workflowType && a.workflowId === b.workflowId

/**
 * Applies `items` in one transaction; `fence` acks the worker's rows with it.
 * Fails only when the transaction itself fails (then nothing was written).
 *
 * @internal
 */
export const apply = (
  store: WorkflowStore.WorkflowStore["Type"],
  config: Config,
  items: ReadonlyArray<Item>,
  fence?: Fence,
  traits?: Traits
): Effect.Effect<ReadonlyArray<ItemResult>, StoreError> =>
  Effect.gen(function*() {
    const results: Array<ItemResult | undefined> = new Array(items.length)
    const encode = encoder(config)
    const requests: Array<WorkflowStore.InstanceRequest> = []
    const workflows: Array<Workflow.Any> = []
    const slotOf = new Map<string, number>()
    const prepared: Array<Prepared> = []
    for (let index = 0; index < items.length; index++) {
      const item = items[index]
      const codecs = codecsOf(item.workflow)
      const request = instanceOf(item)
      if (Either.isLeft(request)) {
        results[index] = failed(request.left)
        continue
      }
      let json: unknown = undefined
      if (config.recordInputObservations || config.maxPayloadBytes > 0) {
        const encoded = encode(item.workflow, codecs, "input", item.input)
        if (Either.isLeft(encoded)) {
          results[index] = failed(encoded.left)
          continue
        }
        json = encoded.right
      } else {
        const problem = jsonProblem(item.input)
        if (problem !== undefined) {
          results[index] = failed(
            new UnstorableValue({ workflowType: item.workflow.type, subject: "input", detail: problem })
          )
          continue
        }
      }
      const key = `${request.right.workflowType}\u0000${request.right.workflowId}`
      let slot = slotOf.get(key)
      if (slot === undefined) {
        slot = requests.length
        slotOf.set(key, slot)
        requests.push(request.right)
        workflows.push(item.workflow)
      }
      prepared.push({ index, item, codecs, slot, json })
    }
    for (const p of prepared) {
      const span = p.item.span
      if (span?._tag === "Span") {
        span.attribute("ironflow.workflow_id", requests[p.slot].workflowId)
        span.attribute("ironflow.group_size", prepared.length)
      }
    }

    if (prepared.length > 0 || (fence !== undefined && fence.completed.length > 0)) {
      const rows = prepared.flatMap((p) => p.item.row === undefined ? [] : [p.item.row])
      yield* store.transactGroup(
        {
          instances: requests,
          ...(fence === undefined ? {} : {
            fence: { kind: fence.kind, lockedBy: fence.lockedBy, ids: rows }
          })
        },
        (group) =>
          Effect.gen(function*() {
            const slots: Array<Slot> = requests.map((request, i) => ({
              workflow: workflows[i],
              codecs: codecsOf(workflows[i]),
              request,
              state: undefined,
              loaded: false,
              broken: undefined,
              completed: group.instances[i]._tag === "Completed",
              accepted: 0,
              events: [],
              effects: [],
              effectTraces: undefined,
              effectTraits: [],
              cancels: [],
              timers: []
            }))
            const observations: Array<WorkflowStore.InputObservation> = []
            const observe = (p: Prepared, outcome: WorkflowStore.ObservationOutcome) => {
              if (!config.recordInputObservations) return
              observations.push({
                workflowType: p.item.workflow.type,
                workflowId: requests[p.slot].workflowId,
                inputType: inputTypeOf(p.item.workflow, p.codecs, p.item.input),
                payload: p.json,
                outcome
              })
            }
            const now = DateTime.unsafeMake(group.now)
            const acked: Array<string> = []

            for (const p of prepared) {
              if (p.item.row !== undefined && !group.fenced.has(p.item.row)) {
                results[p.index] = { _tag: "Fenced" }
                continue
              }
              const done = (outcome: ExecuteOutcome.ExecuteOutcome<unknown>) => {
                results[p.index] = { _tag: "Done", outcome }
                if (p.item.row !== undefined) acked.push(p.item.row)
              }
              const locked = group.instances[p.slot]
              const slot = slots[p.slot]
              if (locked._tag === "UniqueKeyHeld") {
                results[p.index] = failed(
                  new UniqueKeyConflict({
                    workflowType: slot.request.workflowType,
                    uniqueKey: Option.getOrElse(slot.request.uniqueKey, () => "")
                  })
                )
                continue
              }
              if (slot.completed) {
                observe(p, { _tag: "AlreadyCompleted" })
                done(ExecuteOutcome.AlreadyCompleted)
                continue
              }
              if (locked._tag !== "Active") continue
              if (!slot.loaded) {
                slot.loaded = true
                const state = yield* Effect.either(
                  rebuild(slot.workflow, slot.request.workflowId, locked.snapshot, locked.events, locked.loadAllEvents)
                )
                if (Either.isLeft(state)) {
                  if (state.left._tag === "StoreError") return yield* Effect.fail(state.left)
                  slot.broken = state.left
                } else {
                  slot.state = state.right
                }
              }
              if (slot.broken !== undefined) {
                results[p.index] = failed(slot.broken)
                continue
              }
              const decision = guard(
                slot.workflow,
                slot.request.workflowId,
                "decide",
                () => slot.workflow.decide(now, slot.state, p.item.input)
              )
              if (Either.isLeft(decision)) {
                results[p.index] = failed(decision.left)
                continue
              }
              if (decision.right._tag === "Reject") {
                const reason = decision.right.reason
                if (config.recordInputObservations) {
                  const rejection = encode(slot.workflow, p.codecs, "rejection", reason)
                  if (Either.isLeft(rejection)) {
                    results[p.index] = failed(rejection.left)
                    continue
                  }
                  observe(p, { _tag: "Rejected", rejection: rejection.right })
                }
                done(ExecuteOutcome.Rejected(reason))
                continue
              }
              const accepted = encodeAccepted(encode, traits ?? noLimits, slot, decision.right, group.now)
              if (Either.isLeft(accepted)) {
                results[p.index] = failed(accepted.left)
                continue
              }
              const writes = accepted.right
              slot.state = writes.state
              slot.completed = writes.completed
              slot.accepted++
              slot.events.push(...writes.events)
              const trace = p.item.span === undefined ? undefined : TraceContext.fromSpan(p.item.span)
              if (trace !== undefined && slot.effectTraces === undefined) {
                slot.effectTraces = slot.effects.map(() => undefined)
              }
              slot.effects.push(...writes.effects)
              if (slot.effectTraces !== undefined) {
                for (let n = 0; n < writes.effects.length; n++) slot.effectTraces.push(trace)
              }
              slot.effectTraits.push(...writes.effectTraits)
              if (writes.cancels.length > 0) {
                // A cancel also cancels what earlier inputs of this group scheduled under the key.
                const cancelled = new Set(writes.cancels)
                for (let t = slot.timers.length - 1; t >= 0; t--) {
                  const key = slot.timers[t].key
                  if (Option.isSome(key) && cancelled.has(key.value)) slot.timers.splice(t, 1)
                }
                for (const key of writes.cancels) if (!slot.cancels.includes(key)) slot.cancels.push(key)
              }
              if (trace === undefined) slot.timers.push(...writes.timers)
              else for (const timer of writes.timers) slot.timers.push({ ...timer, traceContext: trace })
              observe(p, { _tag: "Accepted" })
              done(ExecuteOutcome.Accepted({ eventsAppended: writes.events.length }))
            }

            const instances: Array<WorkflowStore.InstanceWrites> = []
            const discard: Array<{ readonly workflowType: string; readonly workflowId: string }> = []
            for (let i = 0; i < slots.length; i++) {
              const slot = slots[i]
              const locked = group.instances[i]
              if (locked._tag !== "Active") continue
              if (slot.accepted === 0) {
                if (locked.created) discard.push(slot.request)
                continue
              }
              const last = locked.nextSequence - 1 + slot.events.length
              let snapshot: Option.Option<WorkflowStore.Snapshot> = Option.none()
              if (
                config.snapshotEvery > 0 &&
                Math.floor(last / config.snapshotEvery) > Math.floor((locked.nextSequence - 1) / config.snapshotEvery)
              ) {
                // A state that does not encode only costs the snapshot: the events are the truth.
                const state = encode(slot.workflow, slot.codecs, "state", slot.state)
                if (Either.isRight(state)) {
                  snapshot = Option.some({ sequence: last, state: state.right, version: slot.workflow.stateVersion })
                }
              }
              instances.push({
                workflowType: slot.request.workflowType,
                workflowId: slot.request.workflowId,
                firstSequence: locked.nextSequence,
                events: slot.events,
                eventVersion: slot.workflow.eventVersion,
                effects: slot.effects,
                effectTraceContexts: slot.effectTraces,
                effectTraits: slot.effectTraits,
                cancelTimers: slot.cancels,
                timers: slot.timers,
                completed: slot.completed,
                snapshot
              })
            }
            const settlements: WorkflowStore.Settlements | undefined = fence === undefined ? undefined : {
              kind: fence.kind,
              lockedBy: fence.lockedBy,
              completed: [...fence.completed, ...acked],
              failed: [],
              released: []
            }
            return { value: discard, writes: { instances, discard, observations, settlements } }
          })
      ).pipe(
        Effect.flatMap((discarded) => {
          // A unique key refused because an instance of this group held it, and that instance was then
          // removed again (its first input was rejected): the key is free now, so try those inputs again.
          const retry = prepared.filter((p) => {
            const result = results[p.index]
            return result?._tag === "Failed" && result.error._tag === "UniqueKeyConflict" &&
              discarded.some((d) => d.workflowType === p.item.workflow.type && !sameInstance(d, requests[p.slot]))
          })
          if (retry.length === 0) return Effect.void
          return Effect.forEach(retry, (p) =>
            Effect.map(
              apply(store, config, [p.item], fence === undefined ? undefined : { ...fence, completed: [] }),
              ([again]) => {
                results[p.index] = again
              }
            ), { discard: true })
        })
      )
    }
    if (
      results.some((result) => result === undefined)
    ) {
      return yield* Effect.dieMessage("an input of a group got no result")
    }
    return results as ReadonlyArray<ItemResult>
  })

/**
 * Whether a failed group is worth trying again whole (the database was
 * unreachable, a serialization or deadlock failure, resources ran out), as
 * opposed to failing on what one of its inputs wrote.
 *
 * @internal
 */
export const isTransient = (error: StoreError): boolean => {
  let cause: unknown = error.cause
  for (let depth = 0; depth < 5 && cause !== undefined && cause !== null; depth++) {
    const code = (cause as { code?: unknown }).code
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) {
      return /^(08|40|53|57|58)/.test(code) || code === "55P03"
    }
    cause = (cause as { cause?: unknown }).cause
  }
  return true
}
