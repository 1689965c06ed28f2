import type * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { StoreError } from "../../WorkflowError.js"
import type * as WorkflowStore from "../../WorkflowStore.js"
import { outcomeName } from "../../WorkflowStore.js"
import { storableError } from "../storable.js"
import { uuidv7 } from "../uuid.js"
import { isSqlError, json, num, storeError } from "./rows.js"

/** What a commit wrote, for the wake-ups raised after it. @internal */
export interface Committed {
  readonly effects: boolean
  readonly timers: boolean
  readonly events: boolean
  /** Rows released or retried at once: runnable again now. */
  readonly requeued: WorkflowStore.QueueKind | undefined
}

/**
 * The arguments of `ironflow.settle_rows` for one set of settlements (the
 * nine leading parameters of `ironflow.write_group` too).
 *
 * @internal
 */
export const settlementParams = (now: number, settlements: WorkflowStore.Settlements | undefined) => {
  if (settlements === undefined) {
    return {
      queue: null,
      lockedBy: null,
      completed: [],
      failed: [],
      errors: [],
      retryAt: [],
      handled: [],
      released: []
    }
  }
  const failed = settlements.failed
  return {
    queue: settlements.kind,
    lockedBy: settlements.lockedBy,
    completed: settlements.completed,
    failed: failed.map((f) => f.id),
    errors: failed.map((f) => storableError(f.error)),
    retryAt: failed.map((f) =>
      f.disposition._tag === "RetryAfter"
        ? new Date(now + Math.max(0, Duration.toMillis(f.disposition.delay))).toISOString()
        : null
    ),
    handled: failed.map((f) => f.disposition._tag === "DeadLetterHandled"),
    released: settlements.released
  }
}

/** Keyed timers scheduled twice for one instance: the last one wins, as two upserts would. */
const lastPerKey = (timers: ReadonlyArray<WorkflowStore.TimerRequest>): ReadonlyArray<WorkflowStore.TimerRequest> => {
  const out: Array<WorkflowStore.TimerRequest> = []
  const keyed = new Map<string, number>()
  for (const timer of timers) {
    if (Option.isSome(timer.key)) {
      const index = keyed.get(timer.key.value)
      if (index !== undefined) {
        out[index] = timer
        continue
      }
      keyed.set(timer.key.value, out.length)
    }
    out.push(timer)
  }
  return out
}

const lockedInstance = (
  row: Record<string, unknown>,
  request: WorkflowStore.InstanceRequest,
  loadAllEvents: Effect.Effect<ReadonlyArray<WorkflowStore.LoadedEvent>, StoreError>
): WorkflowStore.GroupInstance => {
  if (row.status === "missing") return { _tag: "UniqueKeyHeld" }
  if (row.status === "completed") return { _tag: "Completed" }
  const snapshot: Option.Option<WorkflowStore.Snapshot> =
    row.snapshot_sequence === null || row.snapshot_sequence === undefined || request.snapshotVersion === undefined
      ? Option.none()
      : Option.some({
        sequence: num(row.snapshot_sequence),
        state: json(row.snapshot_data),
        version: request.snapshotVersion
      })
  const events = (json(row.events) as ReadonlyArray<readonly [unknown, unknown, unknown]>).map((
    [sequence, version, payload]
  ): WorkflowStore.LoadedEvent => ({ sequence: num(sequence), version: num(version), payload }))
  const nextSequence = events.length > 0
    ? events[events.length - 1].sequence + 1
    : Option.match(snapshot, { onNone: () => 1, onSome: (s) => s.sequence + 1 })
  return { _tag: "Active", created: row.created === true, snapshot, events, nextSequence, loadAllEvents }
}

/**
 * The group transaction (`WorkflowStore.transactGroup`).
 *
 * @internal
 */
export const makeTransactGroup = (
  sql: SqlClient.SqlClient,
  afterCommit: (committed: Committed) => Effect.Effect<void>
): WorkflowStore.WorkflowStore["Type"]["transactGroup"] => {
  const loadEventsAfter = (workflowType: string, workflowId: string, after: number) =>
    sql<{ sequence: unknown; payload: unknown; event_version: unknown }>`
      SELECT sequence, payload, event_version FROM ironflow.events
      WHERE workflow_type = ${workflowType} AND workflow_id = ${workflowId} AND sequence > ${after}
      ORDER BY sequence`.pipe(
      Effect.map((rows) =>
        rows.map((row): WorkflowStore.LoadedEvent => ({
          sequence: num(row.sequence),
          payload: json(row.payload),
          version: num(row.event_version)
        }))
      )
    )

  const lock = (
    now: number,
    request: Parameters<WorkflowStore.WorkflowStore["Type"]["transactGroup"]>[0]
  ): Effect.Effect<WorkflowStore.LockedGroup, unknown> =>
    Effect.gen(function*() {
      const { fence, instances } = request
      const rows = yield* sql<Record<string, unknown>>`
        SELECT ord, status, created, snapshot_sequence, snapshot_data, events, fenced::text[] AS fenced
        FROM ironflow.lock_group(
        ${new Date(now)},
        ${instances.map((i) => i.workflowType)}::text[],
        ${instances.map((i) => i.workflowId)}::text[],
        ${instances.map((i) => Option.getOrNull(i.uniqueKey))}::text[],
        ${instances.map((i) => i.snapshotVersion ?? null)}::text[],
        ${fence?.kind ?? "effect"}::text,
        ${fence?.ids ?? []}::uuid[],
        ${fence?.lockedBy ?? ""}::text)`
      const locked: Array<WorkflowStore.GroupInstance> = new Array(instances.length)
      let fenced: ReadonlySet<string> = new Set()
      for (const row of rows) {
        const ord = num(row.ord)
        if (ord === 0) {
          fenced = new Set((row.fenced as ReadonlyArray<unknown> | null ?? []).map(String))
          continue
        }
        const instance = instances[ord - 1]
        locked[ord - 1] = lockedInstance(
          row,
          instance,
          Effect.mapError(loadEventsAfter(instance.workflowType, instance.workflowId, 0), storeError("load events"))
        )
      }
      return { now, instances: locked, fenced }
    })

  const write = (now: number, writes: WorkflowStore.GroupWrites) => {
    const s = settlementParams(now, writes.settlements)
    const events = writes.instances.flatMap((i) =>
      i.events.map((payload, n) => ({ i, sequence: i.firstSequence + n, payload: JSON.stringify(payload) }))
    )
    const effects = writes.instances.flatMap((i) =>
      i.effects.map((payload, n) => ({ i, payload, trace: i.effectTraceContexts?.[n], traits: i.effectTraits?.[n] }))
    )
    const cancels = writes.instances.flatMap((i) => i.cancelTimers.map((key) => ({ i, key })))
    const timers = writes.instances.flatMap((i) => lastPerKey(i.timers).map((timer) => ({ i, timer })))
    const updated = writes.instances
    // Trace contexts only when a traced execute wrote some (migration 0013's trailing parameters, by name):
    // without a tracer the statement is the one it always was.
    const traced = effects.some((e) => e.trace !== undefined) || timers.some((t) => t.timer.traceContext !== undefined)
    const traceParams = traced
      ? sql`, p_effect_traceparents => ${effects.map((e) => e.trace?.traceparent ?? null)}::text[],
        p_effect_tracestates => ${effects.map((e) => e.trace?.tracestate ?? null)}::text[],
        p_timer_traceparents => ${timers.map((t) => t.timer.traceContext?.traceparent ?? null)}::text[],
        p_timer_tracestates => ${timers.map((t) => t.timer.traceContext?.tracestate ?? null)}::text[]`
      : sql``
    return sql<{ settled: unknown }>`SELECT ironflow.write_group(
      ${new Date(now)}, ${s.queue}::text, ${s.lockedBy}::text,
      ${s.completed}::uuid[], ${s.failed}::uuid[], ${s.errors}::text[], ${s.retryAt}::timestamptz[],
      ${s.handled}::boolean[], ${s.released}::uuid[],
      ${writes.discard.map((d) => d.workflowType)}::text[], ${writes.discard.map((d) => d.workflowId)}::text[],
      ${writes.observations.map((o) => o.workflowType)}::text[],
      ${writes.observations.map((o) => o.workflowId)}::text[],
      ${writes.observations.map((o) => o.inputType)}::text[],
      ${writes.observations.map((o) => JSON.stringify(o.payload ?? null))}::text[],
      ${writes.observations.map((o) => outcomeName(o.outcome))}::text[],
      ${
      writes.observations.map((o) => o.outcome._tag === "Rejected" ? JSON.stringify(o.outcome.rejection ?? null) : null)
    }::text[],
      ${events.map((e) => e.i.workflowType)}::text[], ${events.map((e) => e.i.workflowId)}::text[],
      ${events.map((e) => e.sequence)}::bigint[], ${events.map((e) => e.i.eventVersion)}::integer[],
      ${events.map((e) => e.payload)}::text[],
      ${effects.map(() => uuidv7(now))}::uuid[], ${effects.map((e) => e.i.workflowType)}::text[],
      ${effects.map((e) => e.i.workflowId)}::text[], ${effects.map((e) => JSON.stringify(e.payload))}::text[],
      ${cancels.map((c) => c.i.workflowType)}::text[], ${cancels.map((c) => c.i.workflowId)}::text[],
      ${cancels.map((c) => c.key)}::text[],
      ${timers.map(() => uuidv7(now))}::uuid[], ${timers.map((t) => t.i.workflowType)}::text[],
      ${timers.map((t) => t.i.workflowId)}::text[],
      ${timers.map((t) => new Date(now + Duration.toMillis(t.timer.delay)).toISOString())}::timestamptz[],
      ${timers.map((t) => JSON.stringify(t.timer.input))}::text[],
      ${timers.map((t) => Option.getOrNull(t.timer.key))}::text[],
      ${updated.map((i) => i.workflowType)}::text[], ${updated.map((i) => i.workflowId)}::text[],
      ${updated.map((i) => i.events.length)}::integer[], ${updated.map((i) => i.completed)}::boolean[],
      ${updated.map((i) => Option.match(i.snapshot, { onNone: () => null, onSome: (x) => x.sequence }))}::bigint[],
      ${
      updated.map((i) => Option.match(i.snapshot, { onNone: () => null, onSome: (x) => JSON.stringify(x.state) }))
    }::text[],
      ${updated.map((i) => Option.match(i.snapshot, { onNone: () => null, onSome: (x) => x.version }))}::text[],
      ${effects.map((e) => e.traits?.priority ?? 0)}::integer[],
      ${effects.map((e) => e.traits?.limitKey ?? null)}::text[],
      ${effects.map((e) => e.traits?.rateKey ?? null)}::text[],
      ${timers.map((t) => t.timer.priority ?? 0)}::integer[]
      ${traceParams}
    ) AS settled`.pipe(
      Effect.as<Committed>({
        effects: effects.length > 0,
        timers: timers.length > 0,
        events: events.length > 0,
        requeued: s.released.length > 0 ? writes.settlements?.kind : undefined
      })
    )
  }

  const transact: WorkflowStore.WorkflowStore["Type"]["transactGroup"] = (request, body) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const { committed, value } = yield* Effect.gen(function*() {
        const group = yield* lock(now, request)
        const { value, writes } = yield* body(group)
        return { committed: yield* write(now, writes), value }
      }).pipe(
        sql.withTransaction,
        Effect.mapError((e) => isSqlError(e) ? new StoreError({ operation: "apply a group", cause: e }) : e)
      )
      yield* afterCommit(committed)
      return value
    }) as any

  return transact
}
