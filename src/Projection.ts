/**
 * Projections: read models built from the events of chosen workflow types,
 * decoded with their Schemas, checkpointed in `ironflow.projection_positions`.
 *
 * - **Commit order.** Events are read in commit order, never skipping one
 *   whose global sequence was assigned before a higher one that committed
 *   first (ironflow 0.6.0's reader can).
 * - **One runner.** At most one runner of a projection name is active at a
 *   time across all processes (a transaction-scoped advisory lock per tick).
 * - **Same transaction.** A tick is one transaction: the handler's writes to
 *   the same database (through `SqlClient`) and the checkpoint commit
 *   together; each event runs in a savepoint, and the first failing event
 *   stops the batch with the events before it committed.
 * - Delivery to other systems is at least once: make such handlers idempotent.
 * - **Retention waits for it.** A projection that has started (`run`,
 *   `layer`) or been `declare`d has a checkpoint from then on, at the start
 *   until it applies an event, and pruning keeps every event it has not
 *   read. Forget a retired one (`forget`, `ironflow projections forget NAME`)
 *   or it holds retention back forever.
 *
 * @since 0.1.0
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { codecsOf } from "./internal/codecs.js"
import * as RealTime from "./internal/realTime.js"
import type * as Workflow from "./Workflow.js"
import { EventDeserializationError, type StoreError, UnknownEventVersion } from "./WorkflowError.js"
import { WorkflowStore } from "./WorkflowStore.js"

/**
 * An event delivered to a projection, decoded with its workflow's Schema.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProjectionEvent<W extends Workflow.Any> {
  readonly workflow: W
  readonly workflowType: W["type"]
  readonly workflowId: string
  /** 1-based position in its instance. */
  readonly sequence: number
  readonly globalSequence: number
  readonly event: Workflow.Event<W>
  readonly createdAt: Date
}

/**
 * The events of any of the workflows (a union discriminated by `workflowType`).
 *
 * @since 0.1.0
 * @category models
 */
export type EventOf<W> = W extends Workflow.Any ? ProjectionEvent<W> : never

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("ironflow/Projection")

/**
 * @since 0.1.0
 * @category models
 */
export interface Projection<W extends Workflow.Any, E = never, R = never> {
  readonly [TypeId]: typeof TypeId
  /** The checkpoint key. Keep it stable; version it (`orders-v2`) when the read model changes. */
  readonly name: string
  readonly workflows: ReadonlyArray<W>
  /** Applies one event. Runs inside the tick's transaction. */
  readonly handle: (event: EventOf<W>) => Effect.Effect<void, E, R>
  /** Clears the read model before a rebuild (runs in the rebuild's transaction). */
  readonly reset: Effect.Effect<void, E, R>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = <const Ws extends ReadonlyArray<Workflow.Any>, E = never, R = never>(options: {
  readonly name: string
  readonly workflows: Ws
  readonly handle: (event: EventOf<Ws[number]>) => Effect.Effect<void, E, R>
  readonly reset?: Effect.Effect<void, E, R> | undefined
}): Projection<Ws[number], E, R> => ({
  [TypeId]: TypeId,
  name: options.name,
  workflows: options.workflows,
  handle: options.handle,
  reset: options.reset ?? Effect.void
})

/**
 * @since 0.1.0
 * @category guards
 */
export const isProjection = (u: unknown): u is Projection<Workflow.Any, unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u

/**
 * A projection's handler failed on an event; the events before it were committed.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProjectionHandlerError extends Data.TaggedError("ProjectionHandlerError")<{
  readonly projection: string
  readonly workflowType: string
  readonly workflowId: string
  readonly globalSequence: number
  readonly cause: unknown
}> {
  override get message() {
    return `projection ${this.projection} failed on event ${this.globalSequence} of ${this.workflowType}:${this.workflowId}: ${
      this.cause instanceof Error ? this.cause.message : String(this.cause)
    }`
  }
}

/**
 * ironflow's `ProjectionConfig`: poll 200 ms, batch 100, error backoff 200 ms
 * doubling up to 5 s; plus a handler timeout of 10 s.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProjectionConfig {
  readonly pollInterval: Duration.DurationInput
  readonly batchSize: number
  readonly errorBackoffBase: Duration.DurationInput
  readonly errorBackoffMax: Duration.DurationInput
  /**
   * Longest a handler may take on one event (real time). A tick holds its
   * transaction, and on the embedded database its only connection, while
   * the handler runs: a handler that hangs is interrupted after this, its
   * event fails the tick as any failing handler does, and executes go on.
   */
  readonly handlerTimeout: Duration.DurationInput
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultConfig: ProjectionConfig = {
  pollInterval: "200 millis",
  batchSize: 100,
  errorBackoffBase: "200 millis",
  errorBackoffMax: "5 seconds",
  handlerTimeout: "10 seconds"
}

/**
 * What one tick did: `None` when another runner holds the projection.
 *
 * @since 0.1.0
 * @category models
 */
export interface TickResult {
  /** Events applied and checkpointed. */
  readonly applied: number
  /** Events read (a full batch means more may be waiting). */
  readonly read: number
  /** The failure that stopped the batch, if any. */
  readonly failure: Option.Option<ProjectionHandlerError | EventDeserializationError | UnknownEventVersion>
}

/**
 * Runs one tick: reads a batch after the checkpoint, applies it, commits.
 *
 * @since 0.1.0
 * @category running
 */
export const tick = <W extends Workflow.Any, E, R>(
  projection: Projection<W, E, R>,
  options: {
    readonly batchSize?: number | undefined
    readonly handlerTimeout?: Duration.DurationInput | undefined
  } = {}
): Effect.Effect<Option.Option<TickResult>, StoreError, WorkflowStore | SqlClient.SqlClient | R> =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore
    const sql = yield* SqlClient.SqlClient
    const byType = new Map(projection.workflows.map((w) => [w.type, w] as const))
    const timeout = Duration.decode(options.handlerTimeout ?? defaultConfig.handlerTimeout)
    // The tick's own statements are untraced (an idle runner polls every `pollInterval`); the handler runs
    // with the caller's tracer setting, so the application's spans in it are recorded.
    const traced = yield* FiberRef.get(FiberRef.currentTracerEnabled)
    const handle = (event: EventOf<W>): Effect.Effect<void, E | Error, R> =>
      RealTime.timeoutTo(Effect.as(projection.handle(event), true), timeout, () => false).pipe(
        Effect.flatMap((done) =>
          done ? Effect.void : Effect.fail(new Error(`the handler timed out after ${Duration.format(timeout)}`))
        ),
        Effect.withTracerEnabled(traced)
      )
    return yield* RealTime.untraced(store.projectionTick<TickResult, never, R>(
      projection.name,
      Array.from(byType.keys()),
      options.batchSize ?? defaultConfig.batchSize,
      (events) =>
        Effect.gen(function*(): Effect.fn.Return<{ readonly applied: number; readonly value: TickResult }, never, R> {
          let applied = 0
          for (const stored of events) {
            const workflow = byType.get(stored.workflowType)!
            const decoded = codecsOf(workflow).readEvent(stored.payload, stored.version)
            if (Either.isLeft(decoded)) {
              const failure = decoded.left._tag === "Version"
                ? new UnknownEventVersion({
                  workflowType: stored.workflowType,
                  workflowId: stored.workflowId,
                  sequence: stored.sequence,
                  version: stored.version,
                  currentVersion: workflow.eventVersion
                })
                : new EventDeserializationError({
                  workflowType: stored.workflowType,
                  workflowId: stored.workflowId,
                  sequence: stored.sequence,
                  detail: decoded.left.detail
                })
              return { applied, value: { applied, read: events.length, failure: Option.some(failure) } }
            }
            const event = {
              workflow,
              workflowType: stored.workflowType,
              workflowId: stored.workflowId,
              sequence: stored.sequence,
              globalSequence: stored.globalSequence,
              event: decoded.right,
              createdAt: stored.createdAt
            } as unknown as EventOf<W>
            // A savepoint per event: a failing handler's writes roll back, earlier events stay.
            const exit = yield* Effect.exit(sql.withTransaction(handle(event)))
            if (exit._tag === "Failure") {
              const failure = new ProjectionHandlerError({
                projection: projection.name,
                workflowType: stored.workflowType,
                workflowId: stored.workflowId,
                globalSequence: stored.globalSequence,
                cause: Cause.squash(exit.cause)
              })
              return { applied, value: { applied, read: events.length, failure: Option.some(failure) } }
            }
            applied++
          }
          return { applied, value: { applied, read: events.length, failure: Option.none() } }
        })
    ))
  })

/**
 * Makes the projection known to the database: creates its checkpoint, at
 * the start, unless it has one. From then on retention keeps every event it
 * has not read. `run` and `layer` declare their projections when they start.
 *
 * @since 0.1.0
 * @category running
 */
export const declare = <W extends Workflow.Any, E, R>(
  projection: Projection<W, E, R>
): Effect.Effect<void, StoreError, WorkflowStore> =>
  Effect.flatMap(WorkflowStore, (store) => Effect.asVoid(store.loadProjectionPosition(projection.name)))

/**
 * Removes a retired projection's checkpoint so it no longer holds back
 * retention (a runner still running recreates it). False when it had none.
 *
 * @since 0.1.0
 * @category running
 */
export const forget = (name: string): Effect.Effect<boolean, StoreError, WorkflowStore> =>
  Effect.flatMap(WorkflowStore, (store) => store.forgetProjection(name))

/**
 * Resets the checkpoint to the start after running the projection's `reset`,
 * in one transaction that waits for the active runner's tick to end. The
 * runners then replay every event.
 *
 * @since 0.1.0
 * @category running
 */
export const rebuild = <W extends Workflow.Any, E, R>(
  projection: Projection<W, E, R>
): Effect.Effect<void, E | StoreError, WorkflowStore | R> =>
  Effect.flatMap(WorkflowStore, (store) => store.resetProjection(projection.name, projection.reset))

/**
 * Runs a projection forever: declares it (see `declare`), then ticks while
 * batches are full and waits for new events (woken in-process after commits,
 * else every `pollInterval`). Failures back off exponentially and are
 * logged; the loop never dies.
 *
 * @since 0.1.0
 * @category running
 */
export const run = <W extends Workflow.Any, E, R>(
  projection: Projection<W, E, R>,
  config: Partial<ProjectionConfig> = {}
): Effect.Effect<never, never, WorkflowStore | SqlClient.SqlClient | R> =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore
    const { batchSize, errorBackoffBase, errorBackoffMax, handlerTimeout, pollInterval } = {
      ...defaultConfig,
      ...config
    }
    const base = Duration.toMillis(Duration.decode(errorBackoffBase))
    const max = Duration.toMillis(Duration.decode(errorBackoffMax))
    let failures = 0
    const backoff = Effect.suspend(() => {
      failures++
      return RealTime.sleep(Duration.millis(Math.min(base * 2 ** (failures - 1), max)))
    })
    const step = Effect.gen(function*() {
      const ticket = yield* store.wakeups.events.ticket
      const result = yield* tick(projection, { batchSize, handlerTimeout })
      if (Option.isNone(result)) {
        // Another process runs it: look again later.
        return yield* RealTime.sleep(pollInterval)
      }
      const { failure, read } = result.value
      if (Option.isSome(failure)) {
        yield* Effect.logWarning(`projection ${projection.name} stopped at a failing event; retrying`, failure.value)
        return yield* backoff
      }
      failures = 0
      if (read < batchSize) yield* Effect.raceFirst(ticket, RealTime.sleep(pollInterval))
    }).pipe(
      Effect.catchAllCause((cause) =>
        Effect.zipRight(Effect.logWarning(`projection ${projection.name} tick failed; retrying`, cause), backoff)
      )
    )
    // Untraced, as the ticks' own statements: the runner's bookkeeping is in no workflow's trace.
    const declared: Effect.Effect<void, never, WorkflowStore> = declare(projection).pipe(
      RealTime.untraced,
      Effect.catchAllCause((cause) =>
        Effect.logWarning(`projection ${projection.name} could not be declared; retrying`, cause).pipe(
          Effect.zipRight(backoff),
          Effect.zipRight(Effect.suspend(() => declared))
        )
      )
    )
    yield* declared
    failures = 0
    return yield* Effect.forever(step)
  }).pipe(Effect.annotateLogs({ package: "ironflow", projection: projection.name }))

/**
 * Runs the projections for the lifetime of the layer, each as a supervised
 * fiber in the layer's scope. The layer is built once every projection is
 * declared (see `declare`), so retention started after it keeps their events.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <const Ps extends ReadonlyArray<Projection<any, any, any>>>(
  projections: Ps,
  config: Partial<ProjectionConfig> = {}
): Layer.Layer<
  never,
  never,
  WorkflowStore | SqlClient.SqlClient | (Ps[number] extends Projection<any, any, infer R> ? R : never)
> =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      // Declared before the layer is up; a database that is down now is retried by each runner instead.
      yield* Effect.forEach(projections, declare, { discard: true }).pipe(
        Effect.catchAllCause((cause) =>
          Effect.logWarning("projections could not be declared yet; their runners retry", cause)
        )
      )
      yield* Effect.forEach(
        projections,
        (projection) => Effect.forkScoped(Effect.interruptible(run(projection, config))),
        { discard: true }
      )
    })
  )
