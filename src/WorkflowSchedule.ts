/**
 * Cron schedules: definitions that feed a workflow an input on a calendar (a
 * cron expression in a time zone, or a fixed interval), declared in code and
 * registered as a Layer.
 *
 * **How a tick fires.** A tick is a row of `ironflow.schedule_ticks` with a
 * unique key (schedule name + tick time, or a trigger id). The scheduler of
 * every runtime process looks at the schedules it declares; a pass locks the
 * due ones (`FOR UPDATE SKIP LOCKED`, so one process handles each), creates
 * their ticks, moves their next tick on, and hands every unfired tick to the
 * timers: the input built from the tick's time becomes a timer row due at the
 * tick, in the same transaction that marks the tick fired. The timer workers
 * then apply it as any timer: the input executed and the timer marked
 * processed in one transaction, fenced by the lease, with the timers' retries
 * and dead letters. So each tick is applied exactly once across any number of
 * processes.
 *
 * **At start** the layer upserts the declared schedules: a new one gets its
 * first tick after the current time; a changed calendar (expression, time
 * zone, interval) has its next tick recomputed from the current time; a
 * changed catch-up policy or workflow type is updated in place; pause state is
 * kept. Schedules of the workflow types registered in this process that are no
 * longer declared are deleted (with their unfired ticks).
 *
 * **Missed ticks** (nothing ran when they were due) follow the catch-up
 * policy: `"skip"` fires none of them (only the latest, when it is at most
 * `grace` late, counts as on time), `"latest"` fires the most recent one
 * once, `{ all: n }` fires the `n` most recent ones, oldest first.
 *
 * Time is the `Clock`'s: `TestClock.adjust` makes ticks due in tests.
 *
 * @since 0.1.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Calendars from "./internal/calendar.js"
import { codecsOf } from "./internal/codecs.js"
import * as Sql from "./internal/pg/schedules.js"
import * as RealTime from "./internal/realTime.js"
import { jsonProblem, textProblem } from "./internal/storable.js"
import { wakeupChannel } from "./PgWorkflowStore.js"
import type * as Workflow from "./Workflow.js"
import type { StoreError } from "./WorkflowError.js"
import * as WorkflowRegistry from "./WorkflowRegistry.js"
import { WorkflowStore } from "./WorkflowStore.js"

/**
 * @since 0.1.0
 * @category type IDs
 */
export const TypeId: unique symbol = Symbol.for("ironflow/WorkflowSchedule")

/**
 * @since 0.1.0
 * @category type IDs
 */
export type TypeId = typeof TypeId

/**
 * What to do with ticks that were due while nothing ran: `"skip"` them (only
 * the latest one, when at most `grace` late, still fires), fire the
 * `"latest"` one once, or fire `{ all: n }` of them (the `n` most recent,
 * oldest first).
 *
 * @since 0.1.0
 * @category models
 */
export type CatchUp = "skip" | "latest" | { readonly all: number }

/**
 * When a schedule ticks: a cron expression (Effect's `Cron`: five fields, or
 * six with seconds first) in a time zone (UTC when none), or a fixed interval
 * (ticks at multiples of it since the Unix epoch, so every process agrees).
 *
 * @since 0.1.0
 * @category models
 */
export type Calendar =
  | { readonly _tag: "Cron"; readonly expression: string; readonly timeZone: Option.Option<string> }
  | { readonly _tag: "Interval"; readonly every: Duration.Duration }

/**
 * A schedule: its unique name, the workflow it feeds, its calendar, the input
 * built from a tick's time (the instance is the input's workflow id, as for
 * any input) and its catch-up policy.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkflowSchedule<W extends Workflow.Any = Workflow.Any> {
  readonly [TypeId]: TypeId
  readonly name: string
  readonly workflow: W
  readonly calendar: Calendar
  readonly catchUp: CatchUp
  readonly input: (tick: Date) => Workflow.Input<W>
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isWorkflowSchedule = (u: unknown): u is WorkflowSchedule =>
  typeof u === "object" && u !== null && TypeId in u

/**
 * A schedule on a cron expression, in `timeZone` (an IANA name; UTC when
 * absent). The default catch-up policy is `"skip"`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Decision, Workflow, WorkflowSchedule } from "ironflow"
 *
 * class Run extends Schema.TaggedClass<Run>()("Run", { day: Schema.String }) {}
 * class Ran extends Schema.TaggedClass<Ran>()("Ran", {}) {}
 *
 * const Report = Workflow.make({
 *   type: "report",
 *   state: Schema.Struct({ done: Schema.Boolean }),
 *   input: Run,
 *   event: Ran,
 *   initialState: { done: false },
 *   workflowId: { field: "day" },
 *   evolve: () => ({ done: true }),
 *   decide: () => Decision.accept(new Ran()),
 *   isTerminal: (state) => state.done
 * })
 *
 * // Every day at 03:00 in Berlin; one instance per day.
 * export const nightly = WorkflowSchedule.cron({
 *   name: "nightly-report",
 *   workflow: Report,
 *   expression: "0 3 * * *",
 *   timeZone: "Europe/Berlin",
 *   input: (tick) => new Run({ day: tick.toISOString().slice(0, 10) }),
 *   catchUp: "latest"
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const cron = <W extends Workflow.Any>(options: {
  readonly name: string
  readonly workflow: W
  readonly expression: string
  readonly timeZone?: string | undefined
  readonly input: (tick: Date) => Workflow.Input<W>
  readonly catchUp?: CatchUp | undefined
}): WorkflowSchedule<W> => ({
  [TypeId]: TypeId,
  name: options.name,
  workflow: options.workflow,
  calendar: { _tag: "Cron", expression: options.expression.trim(), timeZone: Option.fromNullable(options.timeZone) },
  catchUp: options.catchUp ?? "skip",
  input: options.input
})

/**
 * A schedule every `every` (at least one second): ticks fall on multiples of
 * it since the Unix epoch (every hour: on the hour, UTC). The default
 * catch-up policy is `"skip"`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const interval = <W extends Workflow.Any>(options: {
  readonly name: string
  readonly workflow: W
  readonly every: Duration.DurationInput
  readonly input: (tick: Date) => Workflow.Input<W>
  readonly catchUp?: CatchUp | undefined
}): WorkflowSchedule<W> => ({
  [TypeId]: TypeId,
  name: options.name,
  workflow: options.workflow,
  calendar: { _tag: "Interval", every: Duration.decode(options.every) },
  catchUp: options.catchUp ?? "skip",
  input: options.input
})

/**
 * A schedule that cannot be declared: an empty or duplicate name, an
 * expression or time zone that does not parse, an interval under a second, a
 * catch-up bound under 1, a calendar that never ticks, or a workflow type not
 * registered in this process (its timers would never fire here).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidSchedule extends Data.TaggedError("InvalidSchedule")<{
  readonly name: string
  readonly reason: string
}> {
  override get message() {
    return `schedule ${JSON.stringify(this.name)}: ${this.reason}`
  }
}

/**
 * No schedule of that name is stored.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownSchedule extends Data.TaggedError("UnknownSchedule")<{ readonly name: string }> {
  override get message() {
    return `no schedule named ${JSON.stringify(this.name)}`
  }
}

/**
 * What became of a tick: `waiting` for a runtime that declares its schedule
 * to build its input, `pending` as a timer, `retrying` (its input failed, it
 * is retried on the timers' policy), `applied` (its input was executed:
 * accepted, rejected by `decide`, or the instance was already completed),
 * `dead-lettered` (a timer dead letter), or `failed` (its input could not be
 * built: `error` says why).
 *
 * @since 0.1.0
 * @category models
 */
export interface TickOutcome {
  readonly status: "waiting" | "pending" | "retrying" | "applied" | "dead-lettered" | "failed"
  readonly error: Option.Option<string>
}

/**
 * A tick as stored.
 *
 * @since 0.1.0
 * @category models
 */
export interface Tick {
  readonly id: string
  readonly scheduleName: string
  /** Its unique key: the tick's time (ISO 8601), or `trigger:<id>`. */
  readonly key: string
  readonly source: "schedule" | "trigger"
  readonly tickAt: Date
  readonly createdAt: Date
  /** When its input was handed to the timers. */
  readonly firedAt: Option.Option<Date>
  readonly workflowId: Option.Option<string>
  /** The timer row that applies it. */
  readonly timerId: Option.Option<string>
  readonly outcome: TickOutcome
}

/**
 * A stored schedule, for operators.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScheduleInfo {
  readonly name: string
  readonly workflowType: string
  readonly calendar: Calendar
  readonly catchUp: CatchUp
  /** The next tick; none while it is to be computed (just declared, changed or resumed). */
  readonly nextTickAt: Option.Option<Date>
  readonly lastTick: Option.Option<Tick>
  readonly paused: boolean
  readonly createdAt: Date
  readonly updatedAt: Date
}

/**
 * A calendar in words: `0 3 * * * (Europe/Berlin)`, `every 1h`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const describeCalendar = (calendar: Calendar): string =>
  calendar._tag === "Cron"
    ? `${calendar.expression}${Option.match(calendar.timeZone, { onNone: () => "", onSome: (tz) => ` (${tz})` })}`
    : `every ${Duration.format(calendar.every)}`

/**
 * A catch-up policy in words: `skip`, `latest`, `all (at most 10)`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const describeCatchUp = (catchUp: CatchUp): string =>
  typeof catchUp === "string" ? catchUp : `all (at most ${catchUp.all})`

/**
 * Schedules as operators see them: stored in the database, whatever process
 * declared them.
 *
 * @since 0.1.0
 * @category tags
 */
export class Schedules extends Context.Tag("ironflow/WorkflowSchedule/Schedules")<Schedules, {
  /** Every stored schedule with its next tick, last tick and that tick's outcome, by name. */
  readonly list: Effect.Effect<ReadonlyArray<ScheduleInfo>, StoreError>
  /** The most recent ticks of a schedule (default 100), newest first. */
  readonly ticks: (name: string, limit?: number) => Effect.Effect<ReadonlyArray<Tick>, UnknownSchedule | StoreError>
  /** Stops a schedule from firing (in every process) until resumed. Idempotent. */
  readonly pause: (name: string) => Effect.Effect<void, UnknownSchedule | StoreError>
  /**
   * Lets a paused schedule fire again: its next tick is computed from the
   * current time, so the ticks of the pause are not fired. Idempotent.
   */
  readonly resume: (name: string) => Effect.Effect<void, UnknownSchedule | StoreError>
  /**
   * Fires one tick now, with its own unique key: a tick row that a runtime
   * declaring the schedule hands to its timers at its next pass (within its
   * `pollInterval`), even while the schedule is paused.
   */
  readonly trigger: (name: string) => Effect.Effect<Tick, UnknownSchedule | StoreError>
}>() {}

const fromRow = (row: Sql.ScheduleRow): ScheduleInfo => ({
  name: row.name,
  workflowType: row.workflowType,
  calendar: row.kind === "interval"
    ? { _tag: "Interval", every: Duration.millis(Number(row.expression)) }
    : { _tag: "Cron", expression: row.expression, timeZone: Option.fromNullable(row.timeZone) },
  catchUp: row.catchUp === "all" ? { all: row.catchUpLimit ?? 1 } : row.catchUp,
  nextTickAt: row.nextTickAt,
  lastTick: row.lastTick,
  paused: row.paused,
  createdAt: row.createdAt,
  updatedAt: row.updatedAt
})

/**
 * The operators' service over the `SqlClient` in context (no workflow code
 * needed: what the CLI uses).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSchedules: Effect.Effect<Schedules["Type"], never, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const ops = Sql.make(sql)
  const found = (name: string) => (found: boolean): Effect.Effect<void, UnknownSchedule> =>
    found ? Effect.void : Effect.fail(new UnknownSchedule({ name }))
  return Schedules.of({
    list: Effect.map(ops.list, (rows) => rows.map(fromRow)),
    ticks: Effect.fnUntraced(function*(name: string, limit: number = 100) {
      const rows = yield* ops.ticks(name, Math.max(1, Math.floor(limit)))
      if (rows.length > 0) return rows
      const all = yield* ops.list
      if (!all.some((s) => s.name === name)) return yield* new UnknownSchedule({ name })
      return rows
    }),
    pause: (name) =>
      Clock.currentTimeMillis.pipe(Effect.flatMap((now) => ops.pause(now, name)), Effect.flatMap(found(name))),
    resume: (name) =>
      Clock.currentTimeMillis.pipe(Effect.flatMap((now) => ops.resume(now, name)), Effect.flatMap(found(name))),
    trigger: (name) =>
      Effect.flatMap(
        Effect.flatMap(Clock.currentTimeMillis, (now) => ops.trigger(now, name)),
        Option.match({ onNone: () => Effect.fail(new UnknownSchedule({ name })), onSome: Effect.succeed })
      )
  })
})

/**
 * The operators' service alone: list, pause, resume, trigger (no scheduler).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSchedules: Layer.Layer<Schedules, never, SqlClient.SqlClient> = Layer.effect(
  Schedules,
  makeSchedules
)

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * How often the scheduler looks at the database when no tick is due sooner
   * (picks up triggers, resumes and changes by other processes; default 1
   * second). Ticks themselves are waited for precisely.
   */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** How late the latest tick may be and still fire under `"skip"` (default 1 minute). */
  readonly grace?: Duration.DurationInput | undefined
}

const describeThrown = (cause: unknown) => cause instanceof Error ? cause.message : String(cause)

const compile = (
  schedule: WorkflowSchedule,
  registered: ReadonlySet<string>,
  now: number
): Either.Either<Sql.Compiled, InvalidSchedule> => {
  const invalid = (reason: string) => Either.left(new InvalidSchedule({ name: schedule.name, reason }))
  if (typeof schedule.name !== "string" || schedule.name.trim() === "") return invalid("the name is empty")
  const nameProblem = textProblem(schedule.name)
  if (nameProblem !== undefined) return invalid(`the name ${nameProblem}`)
  const workflow = schedule.workflow
  if (!registered.has(workflow.type)) {
    return invalid(`its workflow type ${workflow.type} is not registered in this process (WorkflowRegistry)`)
  }
  let catchUp: Calendars.CatchUp
  if (schedule.catchUp === "skip") catchUp = { _tag: "Skip" }
  else if (schedule.catchUp === "latest") catchUp = { _tag: "Latest" }
  else if (
    typeof schedule.catchUp === "object" && schedule.catchUp !== null && Number.isInteger(schedule.catchUp.all) &&
    schedule.catchUp.all >= 1
  ) catchUp = { _tag: "All", limit: schedule.catchUp.all }
  else return invalid(`catch-up must be "skip", "latest" or { all: n } with a whole n of at least 1`)
  let calendar: Calendars.Calendar
  let kind: "cron" | "interval"
  let expression: string
  let timeZone: string | null = null
  if (schedule.calendar._tag === "Cron") {
    const tz = Option.getOrUndefined(schedule.calendar.timeZone)
    const compiled = Calendars.cron(schedule.calendar.expression, tz)
    if (Either.isLeft(compiled)) return invalid(`the cron expression does not parse: ${compiled.left}`)
    calendar = compiled.right
    kind = "cron"
    expression = schedule.calendar.expression
    timeZone = tz ?? null
  } else {
    const millis = Duration.toMillis(schedule.calendar.every)
    if (!Number.isFinite(millis) || millis < 1000 || !Number.isInteger(millis)) {
      return invalid(
        `the interval must be whole milliseconds, at least 1 second (got ${Duration.format(schedule.calendar.every)})`
      )
    }
    calendar = Calendars.interval(millis)
    kind = "interval"
    expression = String(millis)
  }
  if (calendar.firstAfter(now) === undefined) return invalid("the calendar never ticks")
  const codecs = codecsOf(workflow)
  const build = (tick: Date): Either.Either<{ readonly workflowId: string; readonly input: unknown }, string> => {
    let input: unknown
    try {
      input = schedule.input(tick)
    } catch (cause) {
      return Either.left(`the input function threw: ${describeThrown(cause)}`)
    }
    const problem = jsonProblem(input)
    if (problem !== undefined) return Either.left(`the input cannot be stored: ${problem}`)
    let workflowId: unknown
    try {
      workflowId = workflow.workflowId(input)
    } catch (cause) {
      return Either.left(`workflowId threw: ${describeThrown(cause)}`)
    }
    if (typeof workflowId !== "string") return Either.left("the workflow id is not a string")
    const idProblem = textProblem(workflowId)
    if (idProblem !== undefined) return Either.left(`the workflow id ${idProblem}`)
    const encoded = codecs.input.encode(input)
    if (Either.isLeft(encoded)) return Either.left(`the input does not encode: ${encoded.left}`)
    return Either.right({ workflowId, input: encoded.right })
  }
  return Either.right({
    row: {
      name: schedule.name,
      workflowType: workflow.type,
      kind,
      expression,
      timeZone,
      catchUp: catchUp._tag === "Skip" ? "skip" : catchUp._tag === "Latest" ? "latest" : "all",
      catchUpLimit: catchUp._tag === "All" ? catchUp.limit : null
    },
    calendar,
    catchUp,
    build
  })
}

/**
 * Declares `schedules` at start (see the module's documentation: new, changed
 * and removed schedules) and runs their scheduler for the lifetime of the
 * layer; provides the operators' `Schedules` too. Fails with
 * `InvalidSchedule` when a schedule cannot be declared (nothing is written
 * then). Every process that runs this layer declares the same schedules for
 * the workflow types it registers: a process that registers a workflow type
 * deletes the schedules of that type it does not declare.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Schema } from "effect"
 * import {
 *   Decision,
 *   PgliteClient,
 *   PgWorkflowStore,
 *   RuntimeConfig,
 *   Workflow,
 *   WorkflowRegistry,
 *   WorkflowRuntime,
 *   WorkflowSchedule
 * } from "ironflow"
 *
 * class Beat extends Schema.TaggedClass<Beat>()("Beat", { at: Schema.String }) {}
 * class Beaten extends Schema.TaggedClass<Beaten>()("Beaten", { at: Schema.String }) {}
 *
 * const Heartbeat = Workflow.make({
 *   type: "heartbeat",
 *   state: Schema.Struct({ beats: Schema.Number }),
 *   input: Beat,
 *   event: Beaten,
 *   initialState: { beats: 0 },
 *   workflowId: () => "heartbeat",
 *   evolve: (state) => ({ beats: state.beats + 1 }),
 *   decide: (_now, _state, input) => Decision.accept(new Beaten({ at: input.at })),
 *   isTerminal: () => false
 * })
 *
 * const everyMinute = WorkflowSchedule.interval({
 *   name: "heartbeat",
 *   workflow: Heartbeat,
 *   every: "1 minute",
 *   input: (tick) => new Beat({ at: tick.toISOString() }),
 *   catchUp: { all: 5 }
 * })
 *
 * // The runtime fires the ticks (they are timers); the schedule layer creates them.
 * const App = Layer.mergeAll(WorkflowRuntime.layer, WorkflowSchedule.layer([everyMinute])).pipe(
 *   Layer.provide(WorkflowRegistry.layer([Heartbeat])),
 *   Layer.provide(RuntimeConfig.layerFromEnv()),
 *   Layer.provideMerge(PgWorkflowStore.layer),
 *   Layer.provide(PgliteClient.layer())
 * )
 *
 * const program = Effect.gen(function*() {
 *   const schedules = yield* WorkflowSchedule.Schedules
 *   const [info] = yield* schedules.list
 *   yield* Effect.log(`${info.name}: ${WorkflowSchedule.describeCalendar(info.calendar)}`)
 * })
 *
 * Effect.runPromise(Effect.scoped(program.pipe(Effect.provide(App))))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  schedules: ReadonlyArray<WorkflowSchedule<any>>,
  options: Options = {}
): Layer.Layer<
  Schedules,
  InvalidSchedule | StoreError,
  SqlClient.SqlClient | WorkflowStore | WorkflowRegistry.WorkflowRegistry
> =>
  Layer.scoped(
    Schedules,
    Effect.gen(function*() {
      const sql = (yield* SqlClient.SqlClient).withoutTransforms()
      const store = yield* WorkflowStore
      const registry = yield* WorkflowRegistry.WorkflowRegistry
      const pg = yield* Effect.serviceOption(PgClient.PgClient)
      const ops = Sql.make(sql)
      const poll = Duration.toMillis(Duration.decode(options.pollInterval ?? "1 second"))
      const grace = Duration.toMillis(Duration.decode(options.grace ?? "1 minute"))

      const now = yield* Clock.currentTimeMillis
      const registered = new Set(registry.types)
      const compiled = new Map<string, Sql.Compiled>()
      for (const schedule of schedules) {
        const result = compile(schedule, registered, now)
        if (Either.isLeft(result)) return yield* result.left
        if (compiled.has(schedule.name)) {
          return yield* new InvalidSchedule({ name: schedule.name, reason: "the name is declared twice" })
        }
        compiled.set(schedule.name, result.right)
      }
      const rows = Array.from(compiled.values(), (c) => c.row)
      const removed = yield* ops.sync(now, rows, registry.types)
      if (removed.length > 0) {
        yield* Effect.logInfo(`schedules no longer declared, deleted: ${removed.join(", ")}`)
      }

      // Other processes' timer workers are woken by the NOTIFY (delivered at commit); ours directly.
      const notify = Option.isSome(pg) ? sql`SELECT pg_notify(${wakeupChannel}, 'timers')` : Effect.void
      const pass = Effect.gen(function*() {
        const report = yield* ops.pass(yield* Clock.currentTimeMillis, compiled, grace, notify)
        if (report.timers > 0) yield* store.wakeups.timers.notify
        if (report.failed > 0) {
          yield* Effect.logWarning(`${report.failed} schedule tick(s) could not build their input (see schedules list)`)
        }
        if (report.more) return 0
        const next = yield* ops.nextDue(rows)
        const at = yield* Clock.currentTimeMillis
        // Sleep (real time) until the earliest next tick by the Clock, or the poll interval.
        return Option.match(next, {
          onNone: () => poll,
          onSome: (due) => Math.min(poll, Math.max(due.getTime() - at, 10))
        })
      })
      if (compiled.size > 0) {
        yield* pass.pipe(
          Effect.catchAllCause((cause) => Effect.as(Effect.logWarning("scheduler pass failed", cause), poll)),
          Effect.flatMap((wait) => RealTime.sleep(Duration.millis(wait))),
          Effect.forever,
          // Untraced: a pass every poll interval would record a root trace each time.
          RealTime.untraced,
          Effect.annotateLogs({ package: "ironflow", component: "scheduler" }),
          Effect.interruptible,
          Effect.forkScoped
        )
      }
      return yield* Effect.provideService(makeSchedules, SqlClient.SqlClient, sql)
    })
  )
