/**
 * What the console shows, read from the store and shaped as the API's
 * Schemas, shared by the JSON endpoints and the pages.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ConsoleApi from "../../ConsoleApi.js"
import type * as StateMachineView from "../../StateMachineView.js"
import type * as WorkflowService from "../../WorkflowService.js"
import * as WorkflowStore from "../../WorkflowStore.js"
import { idle } from "../typeSummary.js"

/** @internal */
export interface Sources {
  readonly store: WorkflowStore.WorkflowStore["Type"]
  /** The application's service, when the console runs with its workflow definitions. */
  readonly service: Option.Option<WorkflowService.WorkflowService["Type"]>
  readonly views: ReadonlyArray<StateMachineView.StateMachineView<any>>
  readonly throughputMinutes: number
}

const unavailable = (error: { readonly message: string }) =>
  new ConsoleApi.Unavailable({ message: `the database could not answer: ${error.message}` })

const orNull = <A>(option: Option.Option<A>): A | null => Option.getOrNull(option)

/** @internal */
export const overview = (sources: Sources): Effect.Effect<ConsoleApi.Overview, ConsoleApi.Unavailable> =>
  Effect.gen(function*() {
    const { store } = sources
    const [queues, counts, workers, projections, throughput, now] = yield* Effect.all([
      store.queueStats,
      store.instanceCounts,
      store.liveWorkers,
      store.projectionPositions,
      store.throughput(sources.throughputMinutes),
      store.databaseTimeMillis
    ])
    const registered = new Set(workers.flatMap((w) => w.workflowTypes))
    const summaries = new Map(WorkflowStore.summarizeByType(queues, registered).map((t) => [t.workflowType, t]))
    const instanceCounts = new Map(counts.map((c) => [c.workflowType, c]))
    // A type with instances but no queue rows is listed too, idle.
    const names = [...new Set([...instanceCounts.keys(), ...summaries.keys()])]
    return new ConsoleApi.Overview({
      at: new Date(now),
      types: names.sort((a, b) => a < b ? -1 : 1).map((workflowType) =>
        new ConsoleApi.TypeOverview({
          ...(summaries.get(workflowType) ?? idle(workflowType, registered.has(workflowType))),
          activeInstances: instanceCounts.get(workflowType)?.active ?? 0,
          completedInstances: instanceCounts.get(workflowType)?.completed ?? 0
        })
      ),
      liveWorkers: workers.map((w) =>
        new ConsoleApi.LiveWorker({
          workerId: w.workerId,
          host: w.host,
          pid: w.pid,
          workflowTypes: w.workflowTypes,
          startedAt: w.startedAt,
          heartbeatAt: w.heartbeatAt,
          clockOffsetMillis: orNull(w.clockOffsetMillis),
          claimsPaused: orNull(w.claimsPaused)
        })
      ),
      projections: projections.map((p) =>
        new ConsoleApi.ProjectionLag({ name: p.name, eventsBehind: p.eventsBehind, updatedAt: p.updatedAt })
      ),
      throughput: throughput.map((m) => new ConsoleApi.ThroughputMinute(m))
    })
  }).pipe(Effect.mapError(unavailable))

/** @internal */
export interface InstanceFilters {
  readonly type?: string | undefined
  readonly prefix?: string | undefined
  readonly status?: "active" | "completed" | undefined
  readonly limit?: number | undefined
  readonly offset?: number | undefined
}

const toInstance = (i: WorkflowStore.WorkflowInstanceSummary) =>
  new ConsoleApi.Instance({
    workflowType: i.workflowType,
    workflowId: i.workflowId,
    createdAt: i.createdAt,
    eventCount: i.eventCount,
    lastEventAt: orNull(i.lastEventAt),
    completedAt: orNull(i.completedAt)
  })

/** @internal */
export const instances = (
  sources: Sources,
  filters: InstanceFilters
): Effect.Effect<ConsoleApi.InstancePage, ConsoleApi.Unavailable> => {
  const limit = filters.limit ?? 50
  const offset = filters.offset ?? 0
  // One row more than shown tells whether another page follows.
  return sources.store.listInstances({
    workflowType: filters.type,
    idPrefix: filters.prefix,
    status: filters.status,
    limit: limit + 1,
    offset
  }).pipe(
    Effect.map((rows) =>
      new ConsoleApi.InstancePage({
        items: rows.slice(0, limit).map(toInstance),
        limit,
        offset,
        more: rows.length > limit
      })
    ),
    Effect.mapError(unavailable)
  )
}

const toDeadLetter = (l: WorkflowStore.DeadLetter) =>
  new ConsoleApi.DeadLetter({
    kind: l.kind,
    id: l.id,
    workflowType: l.workflowType,
    workflowId: l.workflowId,
    attempts: l.attempts,
    lastError: orNull(l.lastError),
    createdAt: l.createdAt,
    deadLetteredAt: l.deadLetteredAt,
    payload: l.payload
  })

const describeError = (error: unknown) =>
  typeof error === "object" && error !== null && "message" in error ? String(error.message) : String(error)

const state = (sources: Sources, workflowType: string, workflowId: string) =>
  Option.match(sources.service, {
    onNone: () => Effect.succeed({ state: null, stateSource: "unavailable" as const, stateError: null, status: null }),
    onSome: (service) =>
      Effect.gen(function*() {
        const encoded = yield* service.fetchLatestStateDynamic(workflowType, workflowId)
        const view = sources.views.find((v) => v.workflow.type === workflowType)
        const status = view === undefined ? null : yield* service.fetchLatestState(view.workflow, workflowId).pipe(
          Effect.map((s) => view.stateInfo(s).status),
          Effect.orElseSucceed(() => null)
        )
        return { state: encoded, stateSource: "definitions" as const, stateError: null, status }
      }).pipe(
        Effect.catchAll((error) =>
          Effect.succeed(
            error._tag === "UnknownWorkflowType"
              ? { state: null, stateSource: "unavailable" as const, stateError: null, status: null }
              : { state: null, stateSource: "failed" as const, stateError: describeError(error), status: null }
          )
        )
      )
  })

/** @internal */
export const instance = (
  sources: Sources,
  workflowType: string,
  workflowId: string
): Effect.Effect<ConsoleApi.InstanceDetail, ConsoleApi.Unavailable | ConsoleApi.NotFound> =>
  Effect.gen(function*() {
    const { store } = sources
    const summary = yield* store.fetchInstance(workflowType, workflowId).pipe(Effect.mapError(unavailable))
    if (Option.isNone(summary)) {
      return yield* new ConsoleApi.NotFound({ message: `no instance ${workflowType} ${workflowId}` })
    }
    const [events, pending, deadEffects, deadTimers, observations] = yield* Effect.all([
      store.fetchEvents(workflowType, workflowId),
      store.fetchPending(workflowType, workflowId),
      store.fetchDeadLetters("effect", { workflowType, workflowId, limit: 500 }),
      store.fetchDeadLetters("timer", { workflowType, workflowId, limit: 500 }),
      store.fetchObservations(workflowType, workflowId)
    ]).pipe(Effect.mapError(unavailable))
    const current = yield* state(sources, workflowType, workflowId)
    return new ConsoleApi.InstanceDetail({
      instance: toInstance(summary.value),
      ...current,
      events: events.map((e) =>
        new ConsoleApi.Event({
          sequence: e.sequence,
          globalSequence: e.globalSequence,
          version: e.version,
          createdAt: e.createdAt,
          payload: e.payload
        })
      ),
      pending: pending.map((p) =>
        new ConsoleApi.PendingItem({
          kind: p.kind,
          id: p.id,
          dueAt: p.dueAt,
          attempts: p.attempts,
          key: orNull(p.key),
          lockedBy: orNull(p.lockedBy),
          lockedUntil: orNull(p.lockedUntil),
          lastError: orNull(p.lastError),
          payload: p.payload
        })
      ),
      deadLetters: [...deadEffects, ...deadTimers].map(toDeadLetter),
      observations: observations.map((o) =>
        new ConsoleApi.Observation({
          id: o.id,
          inputType: o.inputType,
          outcome: o.outcome._tag === "Accepted"
            ? "accepted"
            : o.outcome._tag === "Rejected"
            ? "rejected"
            : "already_completed",
          rejection: o.outcome._tag === "Rejected" ? o.outcome.rejection : null,
          observedAt: o.observedAt,
          payload: o.payload
        })
      )
    })
  })

/** @internal */
export interface DeadLetterFilters {
  readonly kind?: "effect" | "timer" | undefined
  readonly type?: string | undefined
  readonly id?: string | undefined
  readonly limit?: number | undefined
  readonly offset?: number | undefined
}

/** Effects and timers together, newest first. @internal */
export const deadLetters = (
  sources: Sources,
  filters: DeadLetterFilters
): Effect.Effect<ConsoleApi.DeadLetterPage, ConsoleApi.Unavailable> =>
  Effect.gen(function*() {
    const limit = filters.limit ?? 50
    const offset = filters.offset ?? 0
    const kinds: ReadonlyArray<WorkflowStore.QueueKind> = filters.kind === undefined
      ? ["effect", "timer"]
      : [filters.kind]
    const query = { workflowType: filters.type, workflowId: filters.id }
    // Each kind's first offset + limit rows are enough to cut the merged page.
    const perKind = yield* Effect.forEach(kinds, (kind) =>
      Effect.all([
        sources.store.fetchDeadLetters(kind, { ...query, limit: offset + limit, offset: 0 }),
        sources.store.countDeadLetters(kind, query)
      ]))
    const merged = perKind.flatMap(([rows]) => rows).sort((a, b) =>
      b.deadLetteredAt.getTime() - a.deadLetteredAt.getTime() || (a.id < b.id ? -1 : 1)
    )
    return new ConsoleApi.DeadLetterPage({
      total: perKind.reduce((n, [, count]) => n + count, 0),
      items: merged.slice(offset, offset + limit).map(toDeadLetter),
      limit,
      offset
    })
  }).pipe(Effect.mapError(unavailable))

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Retries each row that is a dead letter; the rest are reported, never touched. @internal */
export const retry = (
  sources: Sources,
  rows: ReadonlyArray<{ readonly kind: "effect" | "timer"; readonly id: string }>
): Effect.Effect<ConsoleApi.RetryResult, ConsoleApi.Unavailable> =>
  Effect.gen(function*() {
    const retried: Array<{ kind: "effect" | "timer"; id: string }> = []
    const notDead: Array<{ kind: "effect" | "timer"; id: string }> = []
    const seen = new Set<string>()
    for (const row of rows) {
      const key = `${row.kind}:${row.id}`
      if (seen.has(key)) continue
      seen.add(key)
      const done = uuid.test(row.id) ? yield* sources.store.retryDeadLetter(row.kind, row.id) : false
      ;(done ? retried : notDead).push({ kind: row.kind, id: row.id })
    }
    if (retried.length > 0) {
      yield* Effect.logInfo(`console: retried ${retried.length} dead letter(s)`).pipe(
        Effect.annotateLogs("ids", retried.map((r) => `${r.kind}:${r.id}`).join(","))
      )
    }
    return new ConsoleApi.RetryResult({ retried, notDead })
  }).pipe(Effect.mapError(unavailable))
