/**
 * The storage service behind workflows: instance locking and event streams,
 * the effect outbox, timers, dead letters, observations and queries.
 *
 * The store is schema-agnostic: payloads are JSON values (already encoded by
 * the workflow's Schemas). Every timestamp it writes or compares comes from
 * Effect's `Clock`, so `TestClock` drives leases, backoff and timers.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import { idle } from "./internal/typeSummary.js"
import type { StoreError, UniqueKeyConflict } from "./WorkflowError.js"

/**
 * An event as stored: `sequence` is 1-based and contiguous per instance,
 * `globalSequence` increases across all instances (it may have gaps).
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredEvent {
  readonly globalSequence: number
  readonly workflowType: string
  readonly workflowId: string
  readonly sequence: number
  readonly payload: unknown
  /** The event version it was written with (see `Workflow.make({ eventVersion })`). */
  readonly version: number
  readonly createdAt: Date
}

/**
 * @since 0.1.0
 * @category models
 */
export interface WorkflowInstanceSummary {
  readonly workflowType: string
  readonly workflowId: string
  readonly createdAt: Date
  readonly eventCount: number
  readonly lastEventAt: Option.Option<Date>
  readonly completedAt: Option.Option<Date>
}

/**
 * How many instances of one workflow type are active and completed.
 *
 * @since 0.1.0
 * @category models
 */
export interface InstanceCounts {
  readonly workflowType: string
  readonly active: number
  readonly completed: number
}

/**
 * Work finished in one minute: effects and timers marked processed.
 *
 * @since 0.1.0
 * @category models
 */
export interface ThroughputMinute {
  /** The start of the minute. */
  readonly minute: Date
  readonly effects: number
  readonly timers: number
}

/**
 * How an observed input ended. Stored as `accepted`, `rejected` (with the
 * rejection's JSON) or `already_completed`.
 *
 * @since 0.1.0
 * @category models
 */
export type ObservationOutcome = Data.TaggedEnum<{
  Accepted: {}
  Rejected: { readonly rejection: unknown }
  AlreadyCompleted: {}
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const ObservationOutcome = Data.taggedEnum<ObservationOutcome>()

/**
 * The stored name of an outcome.
 *
 * @since 0.1.0
 * @category conversions
 */
export const outcomeName = (outcome: ObservationOutcome): "accepted" | "rejected" | "already_completed" =>
  outcome._tag === "Accepted" ? "accepted" : outcome._tag === "Rejected" ? "rejected" : "already_completed"

/**
 * @since 0.1.0
 * @category models
 */
export interface InputObservation {
  readonly workflowType: string
  readonly workflowId: string
  readonly inputType: string
  readonly payload: unknown
  readonly outcome: ObservationOutcome
}

/**
 * An input observation as read back from the store.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredObservation extends InputObservation {
  readonly id: number
  readonly observedAt: Date
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TimerRequest {
  readonly delay: Duration.Duration
  /** The encoded input the timer delivers. */
  readonly input: unknown
  readonly key: Option.Option<string>
  /** The trace the decision that set it belongs to (stored on the row; its firing continues it). */
  readonly traceContext?: TraceContext | undefined
  /** Claimed before due timers of lower priority (default 0). */
  readonly priority?: number | undefined
}

/**
 * A W3C trace context (https://www.w3.org/TR/trace-context/) as stored on an
 * outbox or timer row: the span of the execute that wrote the row, so the
 * handler or timer firing that runs it later, in any process, joins its trace.
 *
 * @since 0.1.0
 * @category models
 */
export interface TraceContext {
  /** `00-<trace id>-<parent span id>-<flags>`. */
  readonly traceparent: string
  /** Vendor entries (`key=value,...`), when the span had any. */
  readonly tracestate?: string | undefined
}

/**
 * What a new effect row carries besides its payload: its priority and the
 * names of the limits it runs under (written with the row so that a
 * saturated key's rows can be parked together; the claiming runtime computes
 * them again).
 *
 * @since 0.1.0
 * @category models
 */
export interface EffectTraits {
  readonly priority: number
  /** The concurrency limit's name (`concurrency:<workflow type>:<key>`), if any. */
  readonly limitKey: string | null
  /** The rate limit's name (`rate:<workflow type>:<key>`), if any. */
  readonly rateKey: string | null
}

/**
 * A claimed effect to admit under its limits (`WorkflowStore.admit`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Admission {
  readonly id: string
  readonly concurrency: { readonly name: string; readonly limit: number } | undefined
  readonly rate: { readonly name: string; readonly limit: number; readonly perMillis: number } | undefined
}

/**
 * The snapshot of an instance's state, stored on its row every N events.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  /** The sequence of the last event folded into `state`. */
  readonly sequence: number
  /** The encoded state. */
  readonly state: unknown
  /** The fingerprint of the state Schema that wrote it. */
  readonly version: string
}

/**
 * Everything one accepted decision writes, in one transaction.
 *
 * @since 0.1.0
 * @category models
 */
export interface Writes {
  readonly events: ReadonlyArray<unknown>
  /** The version the events are written with (default 1). */
  readonly eventVersion?: number | undefined
  readonly effects: ReadonlyArray<unknown>
  readonly cancelTimers: ReadonlyArray<string>
  readonly timers: ReadonlyArray<TimerRequest>
  readonly completed: boolean
  readonly observation: Option.Option<InputObservation>
  readonly snapshot: Option.Option<Snapshot>
}

/**
 * An event as loaded for a replay.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadedEvent {
  readonly sequence: number
  readonly payload: unknown
  readonly version: number
}

/**
 * An instance locked for the length of a unit of work.
 *
 * @since 0.1.0
 * @category models
 */
export interface LockedInstance {
  /** The snapshot, when one was stored; `events` then holds only the newer events. */
  readonly snapshot: Option.Option<Snapshot>
  readonly events: ReadonlyArray<LoadedEvent>
  /** The sequence the next appended event receives. */
  readonly nextSequence: number
  /** `Clock` time of this unit of work, in epoch milliseconds; every row it writes carries it. */
  readonly now: number
  /** All events from the first, for when the snapshot cannot be used. */
  readonly loadAllEvents: Effect.Effect<
    ReadonlyArray<LoadedEvent>,
    StoreError
  >
}

/**
 * What the body of a unit of work decided: commit these writes, or roll back.
 *
 * @since 0.1.0
 * @category models
 */
export type UnitOfWork<A> = Data.TaggedEnum<{
  Commit: { readonly writes: Writes; readonly value: A }
  Rollback: { readonly value: A }
}>

interface UnitOfWorkDefinition extends Data.TaggedEnum.WithGenerics<1> {
  readonly taggedEnum: UnitOfWork<this["A"]>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const UnitOfWork = Data.taggedEnum<UnitOfWorkDefinition>()

/**
 * The result of `withInstance`: the instance was already completed (the body
 * did not run), or the body ran and its transaction committed or rolled back.
 *
 * @since 0.1.0
 * @category models
 */
export type InstanceResult<A> =
  | { readonly _tag: "Completed" }
  | { readonly _tag: "Done"; readonly value: A; readonly committed: boolean }

/**
 * Which queue a row belongs to: the effect outbox or the timers.
 *
 * @since 0.1.0
 * @category models
 */
export type QueueKind = "effect" | "timer"

/**
 * A claimed row: an effect (payload = the effect) or a timer (payload = its input).
 *
 * @since 0.1.0
 * @category models
 */
export interface ClaimedItem {
  readonly kind: QueueKind
  readonly id: string
  readonly workflowType: string
  readonly workflowId: string
  readonly payload: unknown
  /** Attempts made before this claim. */
  readonly attempts: number
  readonly createdAt: Date
  /** The time the timer was due (effects: their creation time). */
  readonly dueAt: Date
  /** The lease holder that claimed it. */
  readonly lockedBy: string
  /** The trace context stored on the row by the execute that wrote it (as stored: not checked). */
  readonly traceContext?: TraceContext | undefined
  /** Higher is claimed first among ready rows. */
  readonly priority?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DeadLetter {
  readonly kind: QueueKind
  readonly id: string
  readonly workflowType: string
  readonly workflowId: string
  readonly payload: unknown
  readonly attempts: number
  readonly lastError: Option.Option<string>
  readonly createdAt: Date
  readonly deadLetteredAt: Date
}

/**
 * Filters for dead letters. `limit` defaults to 100; results are newest first.
 *
 * @since 0.1.0
 * @category models
 */
export interface DeadLetterQuery {
  readonly workflowType?: string | undefined
  readonly workflowId?: string | undefined
  readonly limit?: number | undefined
  readonly offset?: number | undefined
}

/**
 * A pending (not processed, not dead) effect or timer, for inspection.
 *
 * @since 0.1.0
 * @category models
 */
export interface PendingItem {
  readonly kind: QueueKind
  readonly id: string
  readonly workflowType: string
  readonly workflowId: string
  readonly payload: unknown
  readonly key: Option.Option<string>
  readonly attempts: number
  readonly lastError: Option.Option<string>
  readonly dueAt: Date
  readonly lockedBy: Option.Option<string>
  readonly lockedUntil: Option.Option<Date>
  readonly createdAt: Date
}

/**
 * How a failed attempt ends: retried after a delay, or dead-lettered.
 *
 * @since 0.1.0
 * @category models
 */
export type FailureDisposition =
  | { readonly _tag: "RetryAfter"; readonly delay: Duration.Duration }
  | { readonly _tag: "DeadLetter" }
  /** Dead, and already turned into an input for its workflow (`onDeadLetter`): marked processed too. */
  | { readonly _tag: "DeadLetterHandled" }

/**
 * Queue depths of one workflow type, for operators and gauges.
 *
 * @since 0.1.0
 * @category models
 */
export interface QueueStats {
  readonly kind: QueueKind
  readonly workflowType: string
  /** Not processed and not dead. */
  readonly pending: number
  /** Runnable now and not claimed (effects: not leased nor backing off; timers: due). */
  readonly ready: number
  /** Claimed, but the lease expired without an ack (a worker died or stalled). */
  readonly expiredLeases: number
  /** Held (lease current) and claimed more than `longRunningAfterMillis` ago: attempts that run long, or hang. */
  readonly longRunning: number
  readonly deadLetters: number
  /**
   * Attempts that ran past their handler's timeout, summed over the rows not
   * processed (pending or dead); always 0 for timers.
   */
  readonly timedOutAttempts: number
}

/**
 * How long a claimed row may be held before `QueueStats.longRunning` counts it.
 *
 * @since 0.1.0
 * @category constants
 */
export const longRunningAfterMillis = 60_000

/**
 * One workflow type's queues, effects and timers together.
 *
 * @since 0.1.0
 * @category models
 */
export interface TypeSummary {
  readonly workflowType: string
  readonly pendingEffects: number
  readonly readyEffects: number
  readonly pendingTimers: number
  readonly dueTimers: number
  readonly expiredLeases: number
  readonly longRunning: number
  readonly deadLetters: number
  readonly timedOutAttempts: number
  /** Whether a live worker announced the type: rows of a type none runs stay pending. */
  readonly runByLiveWorker: boolean
}

/**
 * Merges the per-kind rows of `queueStats` into one summary per workflow
 * type, in the order the types first appear; `runByLiveWorker` holds the
 * types the live workers announced.
 *
 * @since 0.1.0
 * @category conversions
 */
export const summarizeByType = (
  stats: ReadonlyArray<QueueStats>,
  runByLiveWorker: ReadonlySet<string>
): ReadonlyArray<TypeSummary> => {
  const byType = new Map<string, ReturnType<typeof idle>>()
  for (const row of stats) {
    let entry = byType.get(row.workflowType)
    if (entry === undefined) {
      entry = idle(row.workflowType, runByLiveWorker.has(row.workflowType))
      byType.set(row.workflowType, entry)
    }
    if (row.kind === "effect") {
      entry.pendingEffects += row.pending
      entry.readyEffects += row.ready
    } else {
      entry.pendingTimers += row.pending
      entry.dueTimers += row.ready
    }
    entry.expiredLeases += row.expiredLeases
    entry.longRunning += row.longRunning
    entry.deadLetters += row.deadLetters
    entry.timedOutAttempts += row.timedOutAttempts
  }
  return Array.from(byType.values())
}

/**
 * What a retention run deletes (or, in a dry run, would delete).
 *
 * @since 0.1.0
 * @category models
 */
export interface PruneReport {
  readonly dryRun: boolean
  readonly cutoff: Date
  readonly outbox: number
  readonly timers: number
  readonly instances: number
  readonly events: number
  readonly observations: number
}

/**
 * A runtime process as it announced itself.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerInfo {
  readonly workerId: string
  readonly workflowTypes: ReadonlyArray<string>
  readonly host: string
  readonly pid: number
  readonly startedAt: Date
  readonly heartbeatAt: Date
  readonly expiresAt: Date
  /** How far the runtime's clock was from the database's at its last check (positive: ahead), if it checks. */
  readonly clockOffsetMillis: Option.Option<number>
  /** Why the runtime is not claiming, if it is not (its clock disagrees with the database's). */
  readonly claimsPaused: Option.Option<string>
}

/**
 * A broadcast wake-up. A waiter first takes a ticket, then looks for work, then
 * awaits the ticket: a signal sent between the look and the wait is not lost.
 *
 * @since 0.1.0
 * @category models
 */
export interface Signal {
  /** Wakes every current waiter. */
  readonly notify: Effect.Effect<void>
  /** Takes a ticket; the returned effect completes at the next `notify` after it was taken. */
  readonly ticket: Effect.Effect<Effect.Effect<void>>
}

/**
 * Wake-ups for workers: raised in this process after a commit that enqueued
 * work, and (on PostgreSQL) by notifications from other processes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Wakeups {
  readonly effects: Signal
  readonly timers: Signal
  /** Raised after a commit that appended events (projections). */
  readonly events: Signal
}

/**
 * An event with the id of the transaction that wrote it, in commit order.
 *
 * @since 0.1.0
 * @category models
 */
export interface CommittedEvent extends StoredEvent {
  /** The writing transaction (`xid8`, as a decimal string). */
  readonly transactionId: string
}

/**
 * A projection's checkpoint: the last event it applied, in commit order.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProjectionPosition {
  readonly name: string
  readonly lastSequence: number
  readonly lastTransactionId: string
  readonly updatedAt: Date
  /** Events written after the checkpoint (of any workflow type). */
  readonly eventsBehind: number
}

/**
 * An instance a group transaction locks (and creates if missing).
 *
 * @since 0.1.0
 * @category models
 */
export interface InstanceRequest {
  readonly workflowType: string
  readonly workflowId: string
  /** Recorded only when the instance is created; at most one active instance of a type holds a key. */
  readonly uniqueKey: Option.Option<string>
  /** Use a stored snapshot only if it was written under this state version. */
  readonly snapshotVersion?: string | undefined
}

/**
 * An instance as a group transaction found it, once locked.
 *
 * @since 0.1.0
 * @category models
 */
export type GroupInstance =
  | {
    readonly _tag: "Active"
    /** Created by this transaction (it is removed again unless something is accepted on it). */
    readonly created: boolean
    /** The snapshot, when one was stored under the requested version; `events` then holds only the newer ones. */
    readonly snapshot: Option.Option<Snapshot>
    readonly events: ReadonlyArray<LoadedEvent>
    /** The sequence the next appended event receives. */
    readonly nextSequence: number
    /** All events from the first, for when the snapshot cannot be used. */
    readonly loadAllEvents: Effect.Effect<ReadonlyArray<LoadedEvent>, StoreError>
  }
  | { readonly _tag: "Completed" }
  /** Not created: another active instance of its type holds the unique key. */
  | { readonly _tag: "UniqueKeyHeld" }

/**
 * What the accepted decisions of one group wrote on one instance, merged in
 * order: events numbered from the instance's `nextSequence`, effects, timer
 * cancellations (applied to timers that existed before the group), timers
 * (a keyed timer replaces the pending one of its key), completion, snapshot.
 *
 * @since 0.1.0
 * @category models
 */
export interface InstanceWrites {
  readonly workflowType: string
  readonly workflowId: string
  readonly firstSequence: number
  readonly events: ReadonlyArray<unknown>
  /** The version the events are written with. */
  readonly eventVersion: number
  readonly effects: ReadonlyArray<unknown>
  /** The trace context of each effect, in the order of `effects` (absent: none has one). */
  readonly effectTraceContexts?: ReadonlyArray<TraceContext | undefined> | undefined
  /** Per effect (same order), its priority and limit names; absent: priority 0, no limits. */
  readonly effectTraits?: ReadonlyArray<EffectTraits> | undefined
  readonly cancelTimers: ReadonlyArray<string>
  readonly timers: ReadonlyArray<TimerRequest>
  readonly completed: boolean
  readonly snapshot: Option.Option<Snapshot>
}

/**
 * A failed attempt to record.
 *
 * @since 0.1.0
 * @category models
 */
export interface FailedAttempt {
  readonly id: string
  /** Stored as `last_error`; made storable by the store (a NUL byte never keeps it from being written). */
  readonly error: string
  readonly disposition: FailureDisposition
}

/**
 * What becomes of claimed rows, written in one statement and fenced by the
 * lease: only rows still held by `lockedBy` change.
 *
 * @since 0.1.0
 * @category models
 */
export interface Settlements {
  readonly kind: QueueKind
  readonly lockedBy: string
  /** Done: marked processed. */
  readonly completed: ReadonlyArray<string>
  readonly failed: ReadonlyArray<FailedAttempt>
  /** Given back without counting an attempt (shutdown, interruption). */
  readonly released: ReadonlyArray<string>
}

/**
 * Everything one group transaction writes.
 *
 * @since 0.1.0
 * @category models
 */
export interface GroupWrites {
  readonly instances: ReadonlyArray<InstanceWrites>
  /** Instances created by this group on which nothing was accepted: removed again (a rejected first input leaves no row). */
  readonly discard: ReadonlyArray<{ readonly workflowType: string; readonly workflowId: string }>
  readonly observations: ReadonlyArray<InputObservation>
  readonly settlements: Settlements | undefined
}

/**
 * A group transaction, once its instances and rows are locked.
 *
 * @since 0.1.0
 * @category models
 */
export interface LockedGroup {
  /** `Clock` time of the group, in epoch milliseconds; every row it writes carries it. */
  readonly now: number
  /** In the order of the request's `instances`. */
  readonly instances: ReadonlyArray<GroupInstance>
  /** The requested rows still held by the requester (not processed, lease not lost): only their work may be applied. */
  readonly fenced: ReadonlySet<string>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class WorkflowStore extends Context.Tag("ironflow/WorkflowStore")<WorkflowStore, {
  /**
   * Runs a unit of work on one instance: creates the instance row if missing
   * (recording `uniqueKey` only then), locks it (`FOR UPDATE`, so inputs of one
   * instance are serialized), and if it is not completed loads its events and
   * runs `body`. `Commit` writes everything in the same transaction, in the
   * order: observation, events, effects, timer cancellations, timers,
   * completion; `Rollback` (or a failure of `body`) writes nothing, not even a
   * newly created instance row. A unique key held by another active instance
   * fails with `UniqueKeyConflict`.
   */
  readonly withInstance: <A, E, R>(
    instance: {
      readonly workflowType: string
      readonly workflowId: string
      readonly uniqueKey: Option.Option<string>
      /** Use a stored snapshot only if it was written under this state version. */
      readonly snapshotVersion?: string | undefined
    },
    body: (instance: LockedInstance) => Effect.Effect<UnitOfWork<A>, E, R>
  ) => Effect.Effect<InstanceResult<A>, E | StoreError | UniqueKeyConflict, R>

  /**
   * One group transaction: creates the missing instances (recording their
   * unique keys), locks every instance in one fixed order (byte order of type,
   * then id, so groups and single executes never deadlock), locks and checks
   * the requested queue rows (`fence`), loads each active instance's snapshot
   * and newer events, runs `body`, and writes everything `body` returns
   * (decisions, settlements, observations) in one statement before
   * committing. A failure of `body` rolls everything back. Workers are woken
   * after the commit when it wrote effects or timers.
   */
  readonly transactGroup: <A, E, R>(
    request: {
      readonly instances: ReadonlyArray<InstanceRequest>
      readonly fence?: { readonly kind: QueueKind; readonly lockedBy: string; readonly ids: ReadonlyArray<string> }
    },
    body: (group: LockedGroup) => Effect.Effect<{ readonly writes: GroupWrites; readonly value: A }, E, R>
  ) => Effect.Effect<A, E | StoreError, R>

  /** Records an observation in its own short transaction. */
  readonly recordObservation: (observation: InputObservation) => Effect.Effect<void, StoreError>

  /** The observations of one instance, oldest first. */
  readonly fetchObservations: (
    workflowType: string,
    workflowId: string
  ) => Effect.Effect<ReadonlyArray<StoredObservation>, StoreError>

  /** Events of one instance ordered by sequence (empty for an unknown instance). */
  readonly fetchEvents: (
    workflowType: string,
    workflowId: string
  ) => Effect.Effect<ReadonlyArray<StoredEvent>, StoreError>

  /**
   * The snapshot (if one was written under `snapshotVersion`) and the events
   * after it, read without a lock. Without a version, all events.
   */
  readonly loadState: (
    workflowType: string,
    workflowId: string,
    snapshotVersion: string | undefined
  ) => Effect.Effect<{
    readonly snapshot: Option.Option<Snapshot>
    readonly events: ReadonlyArray<LoadedEvent>
  }, StoreError>

  /** Instances, most recently active first. */
  readonly listInstances: (options: {
    readonly workflowType?: string | undefined
    /** Only ids that start with this text (matched literally: `%` and `_` are not wildcards). */
    readonly idPrefix?: string | undefined
    /** Only active (not completed) or only completed instances. */
    readonly status?: "active" | "completed" | undefined
    readonly limit: number
    readonly offset: number
  }) => Effect.Effect<ReadonlyArray<WorkflowInstanceSummary>, StoreError>

  /** Active and completed instances per workflow type (every type with an instance). */
  readonly instanceCounts: Effect.Effect<ReadonlyArray<InstanceCounts>, StoreError>

  /**
   * Effects and timers processed per minute over the last `minutes` minutes
   * (database time), oldest first, one entry per minute (zeros included).
   */
  readonly throughput: (minutes: number) => Effect.Effect<ReadonlyArray<ThroughputMinute>, StoreError>

  /** One instance's summary. */
  readonly fetchInstance: (
    workflowType: string,
    workflowId: string
  ) => Effect.Effect<Option.Option<WorkflowInstanceSummary>, StoreError>

  /** Pending effects and timers of one instance (not processed, not dead). */
  readonly fetchPending: (
    workflowType: string,
    workflowId: string
  ) => Effect.Effect<ReadonlyArray<PendingItem>, StoreError>

  /**
   * Claims up to `limit` runnable rows of the given workflow types (an empty
   * list claims nothing), oldest first (timers: due ones, earliest first), for
   * `lease`. Rows under a live lease or a retry backoff are skipped.
   */
  readonly claim: (options: {
    readonly kind: QueueKind
    readonly workerId: string
    readonly workflowTypes: ReadonlyArray<string>
    readonly limit: number
    readonly lease: Duration.Duration
    /**
     * Rows this worker still owns (running, or done but not acked yet): never
     * claimed again until settled, so a late ack cannot close a newer run.
     */
    readonly exclude?: ReadonlyArray<string> | undefined
  }) => Effect.Effect<ReadonlyArray<ClaimedItem>, StoreError>

  /** Marks rows processed, only where this worker still holds the lease. Returns the ids it changed. */
  readonly complete: (
    kind: QueueKind,
    workerId: string,
    ids: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<string>, StoreError>

  /**
   * Records a failed attempt (fenced by the lease): retry later, or dead-letter.
   * `timedOut`: the attempt ran past its handler's timeout (counted apart, see
   * `QueueStats.timedOutAttempts`). Returns whether it applied.
   */
  readonly fail: (
    kind: QueueKind,
    workerId: string,
    id: string,
    error: string,
    disposition: FailureDisposition,
    options?: { readonly timedOut?: boolean | undefined }
  ) => Effect.Effect<boolean, StoreError>

  /**
   * Admits claimed effects under their concurrency and rate limits, in the
   * order given (claim order), serialized per limit across processes: a row
   * runs when each of its limits has room (a concurrency slot is held while
   * its lease is current); the others are parked, their leases given back,
   * and so is every other ready row of a full limit, until `releaseWaiting`.
   * Returns the ids admitted and still held by `workerId`.
   */
  readonly admit: (
    workerId: string,
    rows: ReadonlyArray<Admission>
  ) => Effect.Effect<ReadonlyArray<string>, StoreError>

  /**
   * Gives parked rows back to the claims, as many per limit as it has room
   * for now (every limit with parked rows, or those named). Returns how many.
   */
  readonly releaseWaiting: (names?: ReadonlyArray<string>) => Effect.Effect<number, StoreError>

  /** Gives leases back without counting an attempt (shutdown, interruption). */
  readonly release: (kind: QueueKind, workerId: string, ids: ReadonlyArray<string>) => Effect.Effect<void, StoreError>

  /** Extends leases held by this worker on rows still pending. */
  readonly extendLeases: (
    kind: QueueKind,
    workerId: string,
    ids: ReadonlyArray<string>,
    lease: Duration.Duration
  ) => Effect.Effect<void, StoreError>

  /** The earliest time a timer of these types becomes claimable, if any is pending. */
  readonly nextTimerDue: (workflowTypes: ReadonlyArray<string>) => Effect.Effect<Option.Option<Date>, StoreError>

  /** Dead letters, newest first. */
  readonly fetchDeadLetters: (
    kind: QueueKind,
    query: DeadLetterQuery
  ) => Effect.Effect<ReadonlyArray<DeadLetter>, StoreError>

  /** Counts dead letters (ignores `limit` and `offset`). */
  readonly countDeadLetters: (kind: QueueKind, query: DeadLetterQuery) => Effect.Effect<number, StoreError>

  /**
   * Makes a dead letter runnable again (attempts 0, error and lease cleared).
   * Only a row that really is dead is reset; returns false otherwise.
   */
  readonly retryDeadLetter: (kind: QueueKind, id: string) => Effect.Effect<boolean, StoreError>

  /** Events with a global sequence greater than `after`, ascending, at most `limit`. */
  readonly fetchEventsSince: (after: number, limit: number) => Effect.Effect<ReadonlyArray<StoredEvent>, StoreError>

  /** A projection's checkpoint (creates it at 0 if missing). */
  readonly loadProjectionPosition: (name: string) => Effect.Effect<number, StoreError>

  /** Stores a projection's checkpoint. */
  readonly storeProjectionPosition: (name: string, globalSequence: number) => Effect.Effect<void, StoreError>

  /**
   * One projection tick, in one transaction: if no other runner holds the
   * projection (a transaction-scoped advisory lock), reads up to `limit`
   * events of `workflowTypes` after its checkpoint in commit order (only
   * events of transactions older than every running one, so none can appear
   * behind the checkpoint later), runs `body` (its database writes join the
   * transaction), and moves the checkpoint past the first `applied` events.
   * `None` when another runner holds the projection.
   */
  readonly projectionTick: <A, E, R>(
    name: string,
    workflowTypes: ReadonlyArray<string>,
    limit: number,
    body: (
      events: ReadonlyArray<CommittedEvent>
    ) => Effect.Effect<{ readonly applied: number; readonly value: A }, E, R>
  ) => Effect.Effect<Option.Option<A>, E | StoreError, R>

  /**
   * Moves a projection's checkpoint back to the start, after `reset` (which
   * runs in the same transaction, once the active runner's tick is over).
   */
  readonly resetProjection: <E, R>(
    name: string,
    reset: Effect.Effect<void, E, R>
  ) => Effect.Effect<void, E | StoreError, R>

  /** Every projection's checkpoint and how far behind it is. */
  readonly projectionPositions: Effect.Effect<ReadonlyArray<ProjectionPosition>, StoreError>

  /**
   * Removes a retired projection's checkpoint (once the active runner's tick
   * is over), so it no longer holds back retention. False when there was none.
   */
  readonly forgetProjection: (name: string) => Effect.Effect<boolean, StoreError>

  /**
   * Retention: deletes, in batches of `batchSize`, effect and timer rows
   * processed before `cutoff`, and (when `completedInstances`) instances
   * completed before `cutoff` with their events, observations and processed
   * rows. Never pending work or dead letters; an instance is kept while it
   * has pending or dead rows, or events a projection known to the database
   * (any checkpoint, even one at the start) has not read yet.
   */
  readonly prune: (options: {
    readonly cutoff: Date
    readonly completedInstances: boolean
    readonly batchSize: number
    readonly dryRun: boolean
  }) => Effect.Effect<PruneReport, StoreError>

  /** Queue depths per kind and workflow type (only types with rows not processed). */
  readonly queueStats: Effect.Effect<ReadonlyArray<QueueStats>, StoreError>

  /** Announces (or refreshes) a live runtime, valid for `ttl`. */
  readonly announceWorker: (
    worker: Pick<WorkerInfo, "workerId" | "workflowTypes" | "host" | "pid" | "clockOffsetMillis" | "claimsPaused">,
    ttl: Duration.Duration
  ) => Effect.Effect<void, StoreError>

  /** Removes a runtime's announcement (at shutdown). */
  readonly retireWorker: (workerId: string) => Effect.Effect<void, StoreError>

  /**
   * The database's own clock (epoch milliseconds, `clock_timestamp()`): what
   * a runtime compares its clock with before it claims.
   */
  readonly databaseTimeMillis: Effect.Effect<number, StoreError>

  /** Runtimes whose announcement has not expired. */
  readonly liveWorkers: Effect.Effect<ReadonlyArray<WorkerInfo>, StoreError>

  /** Wake-ups for workers. */
  readonly wakeups: Wakeups
}>() {}
