/**
 * Test kit for applications' workflows: a complete runtime on a fresh
 * database per test layer (the embedded database by default, or a fresh
 * PostgreSQL database by swapping one Layer), awaits for conditions that need
 * no sleeps in the test, and handler doubles that record their calls and
 * answer from a script.
 *
 * ```ts
 * import { layer } from "@effect/vitest"
 *
 * // `layer(...)`, not `it.layer(...)` more than once per file: after its first use,
 * // @effect/vitest's `it.layer` builds on the first layer and shares its services.
 * layer(TestRuntime.layer({ handlers: [payments.handler] }))("order", (it) => {
 *   it.effect("cancels when payment times out", () =>
 *     Effect.gen(function*() {
 *       const service = yield* WorkflowService.WorkflowService
 *       yield* service.execute(OrderWorkflow, new PlaceOrder({ orderId, amount: 10, address: "x" }))
 *       yield* TestClock.adjust("30 seconds")
 *       yield* TestRuntime.awaitTerminal(OrderWorkflow, orderId)
 *     }))
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as TestClock from "effect/TestClock"
import { randomUUID } from "node:crypto"
import type * as DeadLetters from "./DeadLetters.js"
import type { EffectContext } from "./EffectContext.js"
import * as RealTime from "./internal/realTime.js"
import * as PgliteClient from "./PgliteClient.js"
import * as PgWorkflowStore from "./PgWorkflowStore.js"
import * as RetryPolicy from "./RetryPolicy.js"
import * as RuntimeConfig from "./RuntimeConfig.js"
import type * as Workflow from "./Workflow.js"
import type { DuplicateWorkflowType, StoreError } from "./WorkflowError.js"
import * as WorkflowRegistry from "./WorkflowRegistry.js"
import * as WorkflowRuntime from "./WorkflowRuntime.js"
import * as WorkflowService from "./WorkflowService.js"
import * as WorkflowStore from "./WorkflowStore.js"

/**
 * The fast configuration of ironflow's own test harness: effect poll 50 ms,
 * timer poll 100 ms, shutdown 5 s, retry 3 attempts from 50 ms up to 200 ms,
 * and no clock check against the database (`TestClock` has its own time).
 *
 * @since 0.1.0
 * @category constants
 */
export const testConfig: RuntimeConfig.Options = {
  effectPollInterval: "50 millis",
  timerPollInterval: "100 millis",
  shutdownTimeout: "5 seconds",
  retryPolicy: RetryPolicy.make({ maxAttempts: 3, baseDelay: "50 millis", maxDelay: "200 millis" }),
  // TestClock's time is not the database's: no clock check.
  maxClockSkew: "off"
}

/**
 * A fresh in-memory embedded database (the default).
 *
 * @since 0.1.0
 * @category layers
 */
export const embedded = (): Layer.Layer<SqlClient.SqlClient, unknown> => PgliteClient.layer()

/**
 * A fresh PostgreSQL database, created from the server at `url` (default
 * `TEST_DATABASE_URL`, `DATABASE_URL`, then `postgres://postgres@127.0.0.1:5432/postgres`)
 * and dropped when the layer is released.
 *
 * @since 0.1.0
 * @category layers
 */
export const postgres = (
  options: { readonly url?: Redacted.Redacted | undefined; readonly maxConnections?: number | undefined } = {}
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, unknown> =>
  Layer.unwrapScoped(
    Effect.gen(function*() {
      const url = options.url ?? (yield* Config.redacted("TEST_DATABASE_URL").pipe(
        Config.orElse(() => Config.redacted("DATABASE_URL")),
        Config.withDefault(Redacted.make("postgres://postgres@127.0.0.1:5432/postgres"))
      ))
      const name = `ironflow_test_${randomUUID().replace(/-/g, "").slice(0, 20)}`
      const admin = yield* Layer.build(PgClient.layer({ url, maxConnections: 1 })).pipe(
        Effect.map((context) => context.unsafeMap.get(PgClient.PgClient.key) as PgClient.PgClient)
      )
      yield* admin`CREATE DATABASE ${admin(name)}`
      yield* Effect.addFinalizer(() =>
        admin`DROP DATABASE IF EXISTS ${admin(name)} WITH (FORCE)`.pipe(
          Effect.tapErrorCause((cause) => Effect.logWarning(`could not drop test database ${name}`, cause)),
          Effect.ignore
        )
      )
      const target = new URL(Redacted.value(url))
      target.pathname = `/${name}`
      return PgClient.layer({ url: Redacted.make(target.toString()), maxConnections: options.maxConnections ?? 10 })
    })
  )

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<Registrations extends ReadonlyArray<Workflow.Registration<any>>> {
  /** Handlers and workflows without effects. */
  readonly handlers: Registrations
  /** Runtime options over `testConfig`. */
  readonly config?: RuntimeConfig.Options | undefined
  readonly serviceConfig?: Partial<WorkflowService.ServiceConfig> | undefined
  /** The database; `embedded()` by default, `postgres()` for real PostgreSQL. */
  readonly database?: Layer.Layer<SqlClient.SqlClient, unknown> | undefined
}

/**
 * A running runtime (workers started) on a fresh, migrated database, with
 * the fast test configuration. Provides `WorkflowRuntime`, `WorkflowService`,
 * `DeadLetters`, `WorkflowStore` and the database's `SqlClient`; everything
 * is released with the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <const Registrations extends ReadonlyArray<Workflow.Registration<any>>>(
  options: Options<Registrations>
): Layer.Layer<
  | WorkflowRuntime.WorkflowRuntime
  | WorkflowService.WorkflowService
  | DeadLetters.DeadLetters
  | WorkflowStore.WorkflowStore
  | SqlClient.SqlClient,
  unknown,
  WorkflowRegistry.Requirements<Registrations>
> =>
  WorkflowRuntime.layer.pipe(
    Layer.provide(WorkflowRegistry.layer(options.handlers) as Layer.Layer<
      WorkflowRegistry.WorkflowRegistry,
      DuplicateWorkflowType,
      WorkflowRegistry.Requirements<Registrations>
    >),
    Layer.provide(RuntimeConfig.layer({ ...testConfig, ...options.config })),
    Layer.provide(WorkflowService.layerWith(options.serviceConfig ?? {})),
    Layer.provideMerge(PgWorkflowStore.layer),
    Layer.provideMerge(options.database ?? embedded())
  )

/**
 * The `SqlClient` in context is not the database a test expected.
 *
 * @since 0.1.0
 * @category errors
 */
export class WrongDatabase extends Data.TaggedError("WrongDatabase")<{
  readonly expected: "embedded" | "postgres"
  readonly found: string
}> {
  override get message() {
    return `expected the ${
      this.expected === "postgres" ? "PostgreSQL server" : "embedded database"
    }, found ${this.found}`
  }
}

/**
 * Proves which database the test talks to, asking the database itself.
 * `"embedded"`: PGlite. `"postgres"`: a PostgreSQL server (not PGlite,
 * reached over a socket) on which a separate connection reads back what was
 * written. What is written: a row through the `SqlClient` (table
 * `public.ironflow_test_probe`) and, when a `WorkflowStore` is in context
 * (as in `layer`), an instance with one event through the store (workflow
 * type `ironflow_test_probe_*`, deleted again), so a store left on another
 * database is caught too. Use it inside a test that is meant to run on both.
 *
 * @since 0.1.0
 * @category awaiting
 */
export const assertDatabase = (
  expected: "embedded" | "postgres"
): Effect.Effect<void, WrongDatabase | SqlError | StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const store = yield* Effect.serviceOption(WorkflowStore.WorkflowStore)
    const probeType = `ironflow_test_probe_${randomUUID().replace(/-/g, "")}`
    const probeEvents = `(SELECT count(*) FROM ironflow.events WHERE workflow_type = '${probeType}')`
    if (Option.isSome(store)) {
      yield* store.value.withInstance(
        { workflowType: probeType, workflowId: "probe", uniqueKey: Option.none() },
        () =>
          Effect.succeed(WorkflowStore.UnitOfWork.Commit({
            writes: {
              events: [{ type: "Probe" }],
              effects: [],
              cancelTimers: [],
              timers: [],
              completed: false,
              observation: Option.none(),
              snapshot: Option.none()
            },
            value: undefined
          }))
      ).pipe(Effect.catchTag("UniqueKeyConflict", Effect.die)) // no unique key: cannot happen
      yield* Effect.addFinalizer(() =>
        Effect.ignore(Effect.zipRight(
          sql`DELETE FROM ironflow.events WHERE workflow_type = ${probeType}`,
          sql`DELETE FROM ironflow.workflow_instances WHERE workflow_type = ${probeType}`
        ))
      )
      const [here] = yield* sql.unsafe<{ n: unknown }>(`SELECT ${probeEvents} AS n`).pipe(
        Effect.catchAll(() => Effect.succeed([{ n: 0 }]))
      )
      if (Number(here.n) !== 1) {
        return yield* new WrongDatabase({ expected, found: "a WorkflowStore on another database than the SqlClient" })
      }
    }
    const [server] = yield* sql<{ version: string; port: number | null; database: string }>`
      SELECT version() AS version, inet_server_port() AS port, current_database() AS database`
    const pglite = /PGlite|emscripten/.test(server.version)
    if (expected === "embedded") {
      if (!pglite) return yield* new WrongDatabase({ expected, found: server.version })
      return
    }
    if (pglite) return yield* new WrongDatabase({ expected, found: server.version })
    // (Beyond this point the store's probe, if any, is on this server: checked again through another connection.)
    if (server.port === null) {
      return yield* new WrongDatabase({ expected, found: `${server.version} without a server port` })
    }
    const client = yield* Effect.serviceOption(PgClient.PgClient)
    if (Option.isNone(client)) {
      return yield* new WrongDatabase({ expected, found: "a SqlClient that is not a PgClient" })
    }
    const token = randomUUID()
    yield* sql`CREATE TABLE IF NOT EXISTS public.ironflow_test_probe (token text PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())`
    yield* sql`INSERT INTO public.ironflow_test_probe (token) VALUES (${token})`
    const seen = yield* Effect.gen(function*() {
      const other = yield* PgClient.make({ ...client.value.config, maxConnections: 1, minConnections: 0 })
      const [row] = yield* other<{ n: unknown; events: unknown; database: string; port: number | null }>`
        SELECT (SELECT count(*) FROM public.ironflow_test_probe WHERE token = ${token}) AS n,
          ${other.literal(Option.isSome(store) ? probeEvents : "1")} AS events,
          current_database() AS database, inet_server_port() AS port`
      return row
    }).pipe(Effect.scoped, Effect.provide(Reactivity.layer))
    yield* sql`DELETE FROM public.ironflow_test_probe WHERE token = ${token}`
    if (
      Number(seen.n) !== 1 || Number(seen.events) !== 1 || seen.database !== server.database ||
      seen.port !== server.port
    ) {
      return yield* new WrongDatabase({
        expected,
        found: `a database whose writes another connection to ${seen.database} cannot see`
      })
    }
  }).pipe(Effect.scoped)

/**
 * A condition was not met in time.
 *
 * @since 0.1.0
 * @category errors
 */
export class AwaitTimeout extends Data.TaggedError("AwaitTimeout")<{ readonly waitingFor: string }> {
  override get message() {
    return `timed out waiting for ${this.waitingFor}`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AwaitOptions {
  /** Real time to wait before failing with `AwaitTimeout` (default 10 seconds). */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * Advance the `TestClock` by this much between looks, so retries and
   * timers become due while waiting (for "retry until dead letter" tests).
   */
  readonly advanceClock?: Duration.DurationInput | undefined
}

const liveSleep = RealTime.sleep

/**
 * Waits until `check` succeeds with true. Looks every few milliseconds of
 * real time (database work is real I/O), optionally advancing the `TestClock`.
 *
 * @since 0.1.0
 * @category awaiting
 */
export const awaitCondition = <E, R>(
  check: Effect.Effect<boolean, E, R>,
  options: AwaitOptions & { readonly description?: string | undefined } = {}
): Effect.Effect<void, E | AwaitTimeout, R> => {
  const advance = options.advanceClock === undefined ? Effect.void : TestClock.adjust(options.advanceClock)
  const loop: Effect.Effect<void, E, R> = Effect.flatMap(
    check,
    (done) => done ? Effect.void : advance.pipe(Effect.zipRight(liveSleep("5 millis")), Effect.zipRight(loop))
  )
  return Effect.raceFirst(
    loop,
    liveSleep(options.timeout ?? "10 seconds").pipe(
      Effect.zipRight(Effect.fail(new AwaitTimeout({ waitingFor: options.description ?? "a condition" })))
    )
  )
}

/**
 * Waits until the instance is completed (its state terminal).
 *
 * @since 0.1.0
 * @category awaiting
 */
export const awaitTerminal = (
  workflow: Workflow.Any,
  workflowId: string,
  options: AwaitOptions = {}
): Effect.Effect<void, StoreError | AwaitTimeout, WorkflowStore.WorkflowStore> =>
  Effect.flatMap(WorkflowStore.WorkflowStore, (store) =>
    awaitCondition(
      Effect.map(store.fetchInstance(workflow.type, workflowId), (instance) =>
        Option.isSome(instance) && Option.isSome(instance.value.completedAt)),
      { ...options, description: `${workflow.type}:${workflowId} to complete` }
    ))

/**
 * Waits until the instance's state satisfies `predicate`, and returns it.
 *
 * @since 0.1.0
 * @category awaiting
 */
export const awaitState = <W extends Workflow.Any>(
  workflow: W,
  workflowId: string,
  predicate: (state: Workflow.State<W>) => boolean,
  options: AwaitOptions = {}
) =>
  Effect.gen(function*() {
    const service = yield* WorkflowService.WorkflowService
    let state: Workflow.State<W> | undefined
    yield* awaitCondition(
      Effect.map(service.fetchLatestState(workflow, workflowId), (s) => {
        state = s
        return predicate(s)
      }),
      { ...options, description: `the state of ${workflow.type}:${workflowId}` }
    )
    return state as Workflow.State<W>
  })

/**
 * Waits until the instance has no pending effects (all processed or dead).
 *
 * @since 0.1.0
 * @category awaiting
 */
export const awaitEffectsProcessed = (
  workflow: Workflow.Any,
  workflowId: string,
  options: AwaitOptions = {}
): Effect.Effect<void, StoreError | AwaitTimeout, WorkflowStore.WorkflowStore> =>
  Effect.flatMap(WorkflowStore.WorkflowStore, (store) =>
    awaitCondition(
      Effect.map(store.fetchPending(workflow.type, workflowId), (pending) => !pending.some((p) => p.kind === "effect")),
      { ...options, description: `the effects of ${workflow.type}:${workflowId} to be processed` }
    ))

/**
 * Waits until at least `count` (default 1) dead letters match, and returns them.
 *
 * @since 0.1.0
 * @category awaiting
 */
export const awaitDeadLetters = (
  query: WorkflowStore.DeadLetterQuery & { readonly timers?: boolean | undefined; readonly count?: number | undefined },
  options: AwaitOptions = {}
): Effect.Effect<ReadonlyArray<WorkflowStore.DeadLetter>, StoreError | AwaitTimeout, WorkflowStore.WorkflowStore> =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore.WorkflowStore
    const kind = query.timers ? "timer" : "effect"
    yield* awaitCondition(
      Effect.map(store.countDeadLetters(kind, query), (n) => n >= (query.count ?? 1)),
      { ...options, description: `${query.count ?? 1} dead ${kind}(s)` }
    )
    return yield* store.fetchDeadLetters(kind, query)
  })

/**
 * A scripted answer of a handler double.
 *
 * @since 0.1.0
 * @category models
 */
export type Reply<I> =
  | { readonly _tag: "Succeed"; readonly input: Option.Option<I> }
  | { readonly _tag: "Fail"; readonly error: unknown }
  | { readonly _tag: "Die"; readonly defect: unknown }
  | { readonly _tag: "Delay"; readonly duration: Duration.DurationInput; readonly then: Reply<I> }
  | { readonly _tag: "Never" }

/**
 * Constructors of `Reply`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const Reply = {
  /** Route this input back to the workflow. */
  route: <I>(input: I): Reply<I> => ({ _tag: "Succeed", input: Option.some(input) }),
  /** Succeed with nothing to route. */
  none: <I = never>(): Reply<I> => ({ _tag: "Succeed", input: Option.none() }),
  /** Fail the attempt with this error. */
  fail: <I = never>(error: unknown): Reply<I> => ({ _tag: "Fail", error }),
  /** Die (a defect: also a failed attempt). */
  die: <I = never>(defect: unknown): Reply<I> => ({ _tag: "Die", defect }),
  /** Wait (on the `Clock`, so `TestClock` controls it), then answer. */
  delay: <I>(duration: Duration.DurationInput, then: Reply<I>): Reply<I> => ({ _tag: "Delay", duration, then }),
  /** Never answer. */
  never: <I = never>(): Reply<I> => ({ _tag: "Never" })
} as const

/**
 * A recorded call of a handler double.
 *
 * @since 0.1.0
 * @category models
 */
export interface Call<W extends Workflow.Any> {
  readonly effect: Workflow.EffectOf<W>
  readonly context: EffectContext
}

/**
 * A stand-in handler: register `handler`, read `calls`.
 *
 * @since 0.1.0
 * @category models
 */
export interface HandlerDouble<W extends Workflow.Any> {
  readonly handler: Workflow.WorkflowHandler<W>
  /** Calls so far, in order. */
  readonly calls: Effect.Effect<ReadonlyArray<Call<W>>>
  /** Waits until at least `count` calls were made, and returns them. */
  readonly awaitCalls: (count: number, options?: AwaitOptions) => Effect.Effect<ReadonlyArray<Call<W>>, AwaitTimeout>
}

const answer = <I>(reply: Reply<I>): Effect.Effect<Option.Option<I>, unknown> => {
  switch (reply._tag) {
    case "Succeed":
      return Effect.succeed(reply.input)
    case "Fail":
      return Effect.fail(reply.error)
    case "Die":
      return Effect.die(reply.defect)
    case "Delay":
      return Effect.zipRight(Effect.sleep(reply.duration), answer(reply.then))
    case "Never":
      return Effect.never
  }
}

/**
 * A handler double. `script` is a list of replies used in order (the last one
 * repeats), or a function of the effect, its context and the 0-based call
 * number.
 *
 * @since 0.1.0
 * @category constructors
 */
export const handlerDouble = <W extends Workflow.Any>(
  workflow: W,
  script:
    | ReadonlyArray<Reply<Workflow.Input<W>>>
    | ((effect: Workflow.EffectOf<W>, context: EffectContext, call: number) => Reply<Workflow.Input<W>>),
  options?: Workflow.HandlerOptions
): HandlerDouble<W> => {
  const calls: Array<Call<W>> = []
  const handler = workflow.handler(
    (effect: Workflow.EffectOf<W>, context: EffectContext) =>
      Effect.suspend(() => {
        const call = calls.length
        calls.push({ effect, context })
        const reply = typeof script === "function"
          ? script(effect, context, call)
          : script[Math.min(call, script.length - 1)] ?? Reply.none()
        return answer(reply)
      }),
    options
  ) as Workflow.WorkflowHandler<W>
  const snapshot = Effect.sync(() => calls.slice())
  return {
    handler,
    calls: snapshot,
    awaitCalls: (count, awaitOptions = {}) =>
      awaitCondition(Effect.sync(() => calls.length >= count), {
        ...awaitOptions,
        description: `${count} call(s) of the ${workflow.type} handler`
      }).pipe(Effect.zipRight(snapshot))
  }
}

/**
 * How long (in `Clock` time) until the earliest pending timer of a workflow
 * type is due, if any. Handy before `TestClock.adjust`.
 *
 * @since 0.1.0
 * @category utils
 */
export const nextTimerIn = (
  workflowType: string
): Effect.Effect<Option.Option<Duration.Duration>, StoreError, WorkflowStore.WorkflowStore> =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore.WorkflowStore
    const due = yield* store.nextTimerDue([workflowType])
    const now = yield* Clock.currentTimeMillis
    return Option.map(due, (d) => Duration.millis(Math.max(0, d.getTime() - now)))
  })
