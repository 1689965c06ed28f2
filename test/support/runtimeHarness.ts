/**
 * Helpers of the runtime contract suite: the fast test configuration of
 * ironflow's harness (spec §7), runtimes built and torn down inside a test,
 * waiting on the real clock while the TestClock drives the runtime, and raw
 * reads of the outbox and timer tables.
 */
import { SqlClient } from "@effect/sql"
import { Context, Duration, Effect, Exit, Layer, Option, Scope, TestClock, TestServices } from "effect"
import {
  DeadLetters,
  RetryPolicy,
  RuntimeConfig,
  type Workflow,
  WorkflowRegistry,
  WorkflowRuntime,
  WorkflowService,
  WorkflowStore
} from "ironflow"

let counter = 0

/** A workflow type name used by one test only (tests share one database per suite). */
export const uniqueType = (prefix: string): string =>
  `rt_${prefix}_${++counter}_${Math.random().toString(36).slice(2, 8)}`

/** ironflow's `TEST_MAX_ATTEMPTS`. */
export const TEST_MAX_ATTEMPTS = 3

/** ironflow's fast test configuration: effect poll 50 ms, timer poll 100 ms, shutdown 5 s, retry 3 / 50 ms / 200 ms. */
export const fastConfig: RuntimeConfig.Options = {
  effectPollInterval: "50 millis",
  timerPollInterval: "100 millis",
  shutdownTimeout: "5 seconds",
  retryPolicy: RetryPolicy.make({ maxAttempts: TEST_MAX_ATTEMPTS, baseDelay: "50 millis", maxDelay: "200 millis" }),
  // TestClock's time is not the database's: no clock check.
  maxClockSkew: "off"
}

/** The runtime Layer over the `WorkflowStore` in context, with the fast configuration overridden by `options`. */
export const runtimeLayer = <const Registrations extends ReadonlyArray<Workflow.Registration<any>>>(
  registrations: Registrations,
  options: RuntimeConfig.Options = {}
) =>
  WorkflowRuntime.layer.pipe(
    Layer.provide(WorkflowRegistry.layer(registrations)),
    Layer.provide(RuntimeConfig.layer({ ...fastConfig, ...options }))
  )

/** A runtime started in a scope of its own, so a test can shut it down and observe the shutdown. */
export interface RunningRuntime {
  readonly runtime: WorkflowRuntime.WorkflowRuntime["Type"]
  readonly service: WorkflowService.WorkflowService["Type"]
  readonly deadLetters: DeadLetters.DeadLetters["Type"]
  /** Closes the runtime's scope: the workers drain. Idempotent. */
  readonly shutdown: Effect.Effect<void>
}

/**
 * Builds and starts a runtime; it is shut down when `shutdown` runs or, at the
 * latest, when the test's scope closes.
 */
export const startRuntime = <const Registrations extends ReadonlyArray<Workflow.Registration<any>>>(
  registrations: Registrations,
  options: RuntimeConfig.Options = {},
  /** Another store than the suite's (for example one that injects failures). */
  store?: WorkflowStore.WorkflowStore["Type"]
) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const shutdown = Scope.close(scope, Exit.void)
    yield* Effect.addFinalizer(() => shutdown)
    const layer = store === undefined
      ? runtimeLayer(registrations, options)
      : runtimeLayer(registrations, options).pipe(Layer.provide(Layer.succeed(WorkflowStore.WorkflowStore, store)))
    const context = yield* Layer.buildWithScope(layer, scope).pipe(
      Effect.onError(() => shutdown)
    )
    const running: RunningRuntime = {
      runtime: Context.get(context, WorkflowRuntime.WorkflowRuntime),
      service: Context.get(context, WorkflowService.WorkflowService),
      deadLetters: Context.get(context, DeadLetters.DeadLetters),
      shutdown
    }
    return running
  })

/**
 * A `WorkflowService` over the suite's store, without workers: to prepare rows
 * before a runtime starts.
 */
export const serviceFor = <const Registrations extends ReadonlyArray<Workflow.Registration<any>>>(
  registrations: Registrations
) =>
  Effect.gen(function*() {
    const registry = yield* WorkflowRegistry.make(registrations)
    return yield* WorkflowService.make.pipe(Effect.provideService(WorkflowRegistry.WorkflowRegistry, registry))
  })

/** Waits on the real clock (the TestClock does not move by itself). */
export const liveSleep = (duration: Duration.DurationInput) => TestServices.provideLive(Effect.sleep(duration))

/** Runs `self` with the live Clock: workers forked inside it sleep in real time. */
export const live = <A, E, R>(self: Effect.Effect<A, E, R>) => TestServices.provideLive(self)

export interface AwaitOptions {
  /** Real time to wait at most (default 10 s). */
  readonly timeout?: Duration.DurationInput
  /** Real time between checks (default 20 ms). */
  readonly interval?: Duration.DurationInput
  /** Moves the TestClock this much between checks (what is due: retry backoff, leases); never in live tests. */
  readonly advance?: Duration.DurationInput
}

/**
 * Polls `check` with real sleeps until it returns `Some`, and returns its
 * value; dies with `label` when `timeout` (real time) passes first.
 */
export const awaitSome = <A, E, R>(
  label: string,
  check: Effect.Effect<Option.Option<A>, E, R>,
  options: AwaitOptions = {}
): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(options.timeout ?? "10 seconds")
    const interval = options.interval ?? "20 millis"
    while (true) {
      const result = yield* check
      if (Option.isSome(result)) return result.value
      if (Date.now() > deadline) return yield* Effect.dieMessage(`timed out waiting for ${label}`)
      if (options.advance !== undefined) yield* TestClock.adjust(options.advance)
      yield* liveSleep(interval)
    }
  })

/** Polls `check` with real sleeps until it is true (see `awaitSome`). */
export const awaitCondition = <E, R>(
  label: string,
  check: Effect.Effect<boolean, E, R>,
  options: AwaitOptions = {}
): Effect.Effect<void, E, R> =>
  awaitSome(label, Effect.map(check, (ok) => (ok ? Option.some(undefined) : Option.none())), options)

/** Epoch milliseconds of a timestamp column value (Date or string, depending on the driver). */
const millis = (u: unknown): number => (u instanceof Date ? u.getTime() : new Date(String(u)).getTime())
const nullableMillis = (u: unknown): number | null => (u === null || u === undefined ? null : millis(u))
const nullableString = (u: unknown): string | null => (u === null || u === undefined ? null : String(u))

/** An outbox or timers row, read with SQL. */
export interface QueueRow {
  readonly id: string
  readonly workflowId: string
  readonly payload: unknown
  readonly key: string | null
  readonly fireAt: number | null
  readonly attempts: number
  readonly lastError: string | null
  readonly lockedBy: string | null
  readonly lockedUntil: number | null
  readonly createdAt: number
  readonly processedAt: number | null
  readonly deadLetteredAt: number | null
}

/** The rows of one workflow type in the outbox (`"effect"`) or the timers table (`"timer"`), oldest first. */
export const rowsOf = (kind: WorkflowStore.QueueKind, workflowType: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = kind === "effect"
      ? yield* sql<Record<string, unknown>>`
          SELECT id::text AS id, workflow_id, payload, NULL::text AS key, NULL::timestamptz AS fire_at, attempts,
            last_error, locked_by, locked_until, created_at, processed_at, dead_lettered_at
          FROM ironflow.outbox WHERE workflow_type = ${workflowType} ORDER BY created_at, id`
      : yield* sql<Record<string, unknown>>`
          SELECT id::text AS id, workflow_id, input AS payload, key, fire_at, attempts,
            last_error, locked_by, locked_until, created_at, processed_at, dead_lettered_at
          FROM ironflow.timers WHERE workflow_type = ${workflowType} ORDER BY created_at, id`
    return rows.map((row): QueueRow => ({
      id: String(row.id),
      workflowId: String(row.workflow_id),
      payload: typeof row.payload === "string" ? JSON.parse(row.payload) : row.payload,
      key: nullableString(row.key),
      fireAt: nullableMillis(row.fire_at),
      attempts: Number(row.attempts),
      lastError: nullableString(row.last_error),
      lockedBy: nullableString(row.locked_by),
      lockedUntil: nullableMillis(row.locked_until),
      createdAt: millis(row.created_at),
      processedAt: nullableMillis(row.processed_at),
      deadLetteredAt: nullableMillis(row.dead_lettered_at)
    }))
  })

/** The `"type"` of each stored event of an instance, in order. */
export const eventTypes = (workflowType: string, workflowId: string) =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore.WorkflowStore
    const events = yield* store.fetchEvents(workflowType, workflowId)
    return events.map((event) => (event.payload as { readonly type?: unknown }).type)
  })

/** The stored events of an instance, in order. */
export const storedEvents = (workflowType: string, workflowId: string) =>
  Effect.flatMap(WorkflowStore.WorkflowStore, (store) => store.fetchEvents(workflowType, workflowId))

/** Waits until the instance's events have exactly these types. */
export const awaitEventTypes = (
  workflowType: string,
  workflowId: string,
  expected: ReadonlyArray<string>,
  options: AwaitOptions = {}
) =>
  awaitCondition(
    `events ${expected.join(", ")} of ${workflowType}:${workflowId}`,
    Effect.map(
      eventTypes(workflowType, workflowId),
      (types) => types.length === expected.length && types.every((t, i) => t === expected[i])
    ),
    options
  )

/** Waits until every row of the type (at least `count`) satisfies `predicate`, and returns the rows. */
export const awaitRows = (
  kind: WorkflowStore.QueueKind,
  workflowType: string,
  label: string,
  predicate: (rows: ReadonlyArray<QueueRow>) => boolean,
  options: AwaitOptions = {}
) =>
  awaitSome(
    label,
    Effect.map(rowsOf(kind, workflowType), (rows) => (predicate(rows) ? Option.some(rows) : Option.none())),
    options
  )

/** Appends raw event payloads (a corrupted history) after the instance's last event. */
export const appendRawEvents = (workflowType: string, workflowId: string, payloads: ReadonlyArray<unknown>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ max: unknown }>`
      SELECT coalesce(max(sequence), 0) AS max FROM ironflow.events
      WHERE workflow_type = ${workflowType} AND workflow_id = ${workflowId}`
    const last = Number(rows[0].max)
    for (const [index, payload] of payloads.entries()) {
      yield* sql`
        INSERT INTO ironflow.events (workflow_type, workflow_id, sequence, payload)
        VALUES (${workflowType}, ${workflowId}, ${last + index + 1}, ${JSON.stringify(payload)}::jsonb)`
    }
  })

/**
 * Commits raw (already encoded) effects and timers on an instance through the
 * store, as a decision would, bypassing the workflow's Schemas.
 */
export const enqueueRaw = (
  workflowType: string,
  workflowId: string,
  raw: {
    readonly effects?: ReadonlyArray<unknown>
    readonly timers?: ReadonlyArray<
      { readonly delay: Duration.DurationInput; readonly input: unknown; readonly key?: string }
    >
  }
) =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore.WorkflowStore
    return yield* store.withInstance(
      { workflowType, workflowId, uniqueKey: Option.none() },
      () =>
        Effect.succeed(WorkflowStore.UnitOfWork.Commit({
          writes: {
            events: [],
            effects: raw.effects ?? [],
            cancelTimers: [],
            timers: (raw.timers ?? []).map((t) => ({
              delay: Duration.decode(t.delay),
              input: t.input,
              key: Option.fromNullable(t.key)
            })),
            completed: false,
            observation: Option.none(),
            snapshot: Option.none()
          },
          value: undefined
        }))
    )
  })
