/**
 * The `ironflow` admin command: migrations, instances, dead letters, queue
 * statistics. Connects to `--database-url`, `DATABASE_URL`, or the embedded
 * database in `--data-dir` / `IRONFLOW_DATA_DIR` (default `.ironflow`).
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import { readFileSync } from "node:fs"
import * as Database from "./Database.js"
import * as CancelCommand from "./internal/cli/cancel.js"
import * as ConsoleCommand from "./internal/cli/console.js"
import * as SchedulesCommand from "./internal/cli/schedules.js"
import { importModule } from "./internal/moduleLoader.js"
import * as Migrations from "./Migrations.js"
import * as PgWorkflowStore from "./PgWorkflowStore.js"
import * as Projection from "./Projection.js"
import * as Retention from "./Retention.js"
import * as StateMachineView from "./StateMachineView.js"
import * as Workflow from "./Workflow.js"
import { WorkflowRegistry } from "./WorkflowRegistry.js"
import * as WorkflowRegistryModule from "./WorkflowRegistry.js"
import * as WorkflowService from "./WorkflowService.js"
import * as WorkflowStore from "./WorkflowStore.js"

const databaseUrl = Options.redacted("database-url").pipe(
  Options.withDescription("PostgreSQL connection URL (default: DATABASE_URL, else the embedded database)"),
  Options.optional
)
const dataDir = Options.text("data-dir").pipe(
  Options.withDescription("Data directory of the embedded database (default: IRONFLOW_DATA_DIR or .ironflow)"),
  Options.optional
)
const json = Options.boolean("json").pipe(Options.withDescription("Print JSON instead of a table"))
const workflowType = Options.text("type").pipe(Options.withDescription("Only this workflow type"), Options.optional)
const workflowId = Options.text("id").pipe(Options.withDescription("Only this workflow id"), Options.optional)
/** An integer option of at least `min`: anything less is a bad argument (exit 2). */
const atLeast = (min: number) => (value: number) =>
  value >= min
    ? Effect.succeed(value)
    : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`${value} is not allowed here: give ${min} or more`)))

const limit = Options.integer("limit").pipe(
  Options.withDescription("At most this many rows (default 100)"),
  Options.mapEffect(atLeast(1)),
  Options.withDefault(100)
)
const offset = Options.integer("offset").pipe(
  Options.withDescription("Skip this many rows"),
  Options.mapEffect(atLeast(0)),
  Options.withDefault(0)
)
const timers = Options.boolean("timers").pipe(Options.withDescription("Timers instead of effects"))
const workflowsModule = Options.text("workflows").pipe(
  Options.withDescription(
    "A module whose exported workflow definitions let `show` rebuild the typed state (default: IRONFLOW_WORKFLOWS): " +
      "a .js module, or a .ts module when tsx is installed"
  ),
  Options.optional
)

const connection = { databaseUrl, dataDir }

interface Connection {
  readonly databaseUrl: Option.Option<Redacted.Redacted>
  readonly dataDir: Option.Option<string>
}

/**
 * A command that cannot do what was asked (unknown instance, not a dead letter).
 *
 * @since 0.1.0
 * @category errors
 */
export class CliError extends Data.TaggedError("CliError")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

/**
 * An argument that names nothing the command can act on (an unknown
 * projection): a bad argument, exit code 2.
 *
 * @since 0.1.0
 * @category errors
 */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly reason: string }> {
  override get message() {
    return this.reason
  }
}

/**
 * The database to use. Only `migrate` creates a missing embedded data
 * directory; the other commands say it does not exist.
 */
const databaseOptions = (options: Connection, create: boolean) =>
  Effect.gen(function*() {
    if (Option.isSome(options.databaseUrl)) {
      return { _tag: "Postgres", url: options.databaseUrl.value } as const satisfies Database.Options
    }
    const fromEnv = yield* Database.config
    if (Option.isSome(options.dataDir)) return { _tag: "Embedded", dataDir: options.dataDir.value, create } as const
    return fromEnv._tag === "Embedded" ? { ...fromEnv, create } : fromEnv
  })

/** The chosen database (created, for the embedded one, only when `create`). */
const databaseLayer = (options: Connection, create: boolean) =>
  Layer.unwrapEffect(Effect.map(databaseOptions(options, create), Database.layer)).pipe(
    Layer.catchAll((error) =>
      Layer.fail(
        error._tag === "DataDirectoryUnusable" && (error.reason === "Missing" || error.reason === "NoDatabase")
          ? new CliError({
            reason:
              `${error.message}: nothing to read there (check --data-dir or IRONFLOW_DATA_DIR, set DATABASE_URL, or run \`ironflow migrate\` to create it)`
          })
          : error
      )
    )
  )

/** Runs `f` with a store on the chosen database (migrations applied only by `migrate`). */
const withStore = <A, E>(
  options: Connection,
  f: (store: WorkflowStore.WorkflowStore["Type"]) => Effect.Effect<A, E, WorkflowStore.WorkflowStore>
) =>
  Effect.flatMap(WorkflowStore.WorkflowStore, f).pipe(
    Effect.provide(
      PgWorkflowStore.layerWith({ migrate: false, notifications: false }).pipe(
        Layer.provide(databaseLayer(options, false))
      )
    )
  )

const formatDate = (d: Option.Option<Date> | Date) =>
  d instanceof Date ? d.toISOString() : Option.match(d, { onNone: () => "-", onSome: (x) => x.toISOString() })

const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n")
}

const printJson = (value: unknown) =>
  Console.log(
    JSON.stringify(
      value,
      // Options arrive here already turned into { _id: "Option", ... } by their toJSON.
      (_key, v) => typeof v === "object" && v !== null && v._id === "Option" ? (v._tag === "Some" ? v.value : null) : v,
      2
    )
  )

const migrateCommand = Command.make(
  "migrate",
  connection,
  (options) =>
    Effect.gen(function*() {
      const applied = yield* Migrations.run
      const status = yield* Migrations.status
      if (status.unknown.length > 0) {
        return yield* Console.log(
          `schema ironflow is at migration ${status.applied}, newer than this build (it knows migrations up to ${status.shipped}): nothing applied; use a newer ironflow to manage this schema`
        )
      }
      yield* Console.log(
        `schema ironflow is at migration ${status.applied}${
          applied.length === 0 ? " (up to date)" : ` (applied ${applied.map((m) => m.version).join(", ")})`
        }`
      )
    }).pipe(Effect.provide(databaseLayer(options, true)))
).pipe(Command.withDescription(
  "Create or upgrade the ironflow schema (safe to run while runtimes are up); creates a missing embedded data directory"
))

const instancesList = Command.make(
  "list",
  { ...connection, workflowType, limit, offset, json },
  (options) =>
    withStore(options, (store) =>
      Effect.gen(function*() {
        const rows = yield* store.listInstances({
          workflowType: Option.getOrUndefined(options.workflowType),
          limit: options.limit,
          offset: options.offset
        })
        if (options.json) return yield* printJson(rows)
        yield* Console.log(
          table(
            ["type", "id", "events", "created", "last event", "completed"],
            rows.map((r) => [
              r.workflowType,
              r.workflowId,
              String(r.eventCount),
              formatDate(r.createdAt),
              formatDate(r.lastEventAt),
              formatDate(r.completedAt)
            ])
          )
        )
      }))
).pipe(Command.withDescription("List workflow instances, most recently active first"))

const loadWorkflows = (module: Option.Option<string>) =>
  Effect.gen(function*() {
    const fromEnv = yield* Config.option(Config.string("IRONFLOW_WORKFLOWS"))
    const path = Option.orElse(module, () => fromEnv)
    if (Option.isNone(path)) return [] as ReadonlyArray<Workflow.Any>
    const loaded = yield* Effect.tryPromise({
      try: () => importModule(path.value),
      catch: (cause) =>
        new CliError({ reason: `cannot load workflows from ${path.value}: ${(cause as Error).message}` })
    })
    return Object.values(loaded).filter(Workflow.isWorkflow)
  })

const instancesShow = Command.make(
  "show",
  {
    ...connection,
    json,
    workflows: workflowsModule,
    type: Args.text({ name: "TYPE" }).pipe(Args.withDescription("Workflow type")),
    id: Args.text({ name: "ID" }).pipe(Args.withDescription("Workflow id"))
  },
  (options) =>
    withStore(options, (store) =>
      Effect.gen(function*() {
        const instance = yield* store.fetchInstance(options.type, options.id)
        if (Option.isNone(instance)) {
          return yield* Effect.fail(new CliError({ reason: `no instance ${options.type}:${options.id}` }))
        }
        const events = yield* store.fetchEvents(options.type, options.id)
        const pending = yield* store.fetchPending(options.type, options.id)
        const deadEffects = yield* store.fetchDeadLetters("effect", {
          workflowType: options.type,
          workflowId: options.id
        })
        const deadTimers = yield* store.fetchDeadLetters("timer", {
          workflowType: options.type,
          workflowId: options.id
        })
        const workflows = yield* loadWorkflows(options.workflows)
        const definition = workflows.find((w) => w.type === options.type)
        const state = definition === undefined ? Option.none() : Option.some(
          yield* Effect.gen(function*() {
            const registry = yield* WorkflowRegistryModule.make([definition as Workflow.WithoutEffects])
            const service = yield* WorkflowService.make.pipe(Effect.provideService(WorkflowRegistry, registry))
            return yield* service.fetchLatestStateDynamic(options.type, options.id)
          }).pipe(Effect.catchAll((error) => Effect.succeed({ error: error.message })))
        )
        const view = { instance: instance.value, state, events, pending, deadLetters: [...deadEffects, ...deadTimers] }
        if (options.json) return yield* printJson(view)
        const i = instance.value
        yield* Console.log(`${i.workflowType}:${i.workflowId}`)
        yield* Console.log(
          `  created ${formatDate(i.createdAt)}, ${i.eventCount} events, last event ${formatDate(i.lastEventAt)}, ${
            Option.isSome(i.completedAt) ? `completed ${formatDate(i.completedAt)}` : "active"
          }`
        )
        yield* Console.log(
          Option.match(state, {
            onNone: () => "\nstate: (pass --workflows MODULE to rebuild the typed state)",
            onSome: (s) => `\nstate: ${JSON.stringify(s)}`
          })
        )
        yield* Console.log("\nevents:")
        yield* Console.log(
          table(
            ["seq", "global", "at", "payload"],
            events.map((
              e
            ) => [String(e.sequence), String(e.globalSequence), formatDate(e.createdAt), JSON.stringify(e.payload)])
          )
        )
        yield* Console.log("\npending effects and timers:")
        yield* Console.log(
          pending.length === 0 ? "  none" : table(
            ["kind", "id", "due", "attempts", "key", "leased by", "last error", "payload"],
            pending.map((p) => [
              p.kind,
              p.id,
              formatDate(p.dueAt),
              String(p.attempts),
              Option.getOrElse(p.key, () => "-"),
              Option.getOrElse(p.lockedBy, () => "-"),
              firstLine(Option.getOrElse(p.lastError, () => "-")),
              JSON.stringify(p.payload)
            ])
          )
        )
        if (view.deadLetters.length > 0) {
          yield* Console.log("\ndead letters:")
          yield* Console.log(deadLetterTable(view.deadLetters))
        }
      }))
).pipe(Command.withDescription("Show an instance: state, events, pending effects and timers, dead letters"))

const firstLine = (text: string) => text.split("\n")[0]

const deadLetterTable = (letters: ReadonlyArray<WorkflowStore.DeadLetter>) =>
  table(
    ["kind", "id", "type", "workflow id", "attempts", "dead since", "last error"],
    letters.map((l) => [
      l.kind,
      l.id,
      l.workflowType,
      l.workflowId,
      String(l.attempts),
      formatDate(l.deadLetteredAt),
      firstLine(Option.getOrElse(l.lastError, () => "-"))
    ])
  )

const instancesObservations = Command.make(
  "observations",
  {
    ...connection,
    json,
    type: Args.text({ name: "TYPE" }).pipe(Args.withDescription("Workflow type")),
    id: Args.text({ name: "ID" }).pipe(Args.withDescription("Workflow id"))
  },
  (options) =>
    withStore(options, (store) =>
      Effect.gen(function*() {
        const observations = yield* store.fetchObservations(options.type, options.id)
        if (options.json) return yield* printJson(observations)
        yield* Console.log(
          observations.length === 0
            ? "no observations (they are recorded when WorkflowServiceConfig.recordInputObservations is on)"
            : table(
              ["at", "input", "outcome", "rejection", "payload"],
              observations.map((o) => [
                formatDate(o.observedAt),
                o.inputType,
                WorkflowStore.outcomeName(o.outcome),
                o.outcome._tag === "Rejected" ? JSON.stringify(o.outcome.rejection) : "-",
                JSON.stringify(o.payload)
              ])
            )
        )
      }))
).pipe(
  Command.withDescription("Inputs observed on an instance: accepted, rejected (with the rejection), already completed")
)

const instancesCancel = CancelCommand.make({
  connection,
  json,
  workflows: workflowsModule,
  withStore,
  loadWorkflows,
  refused: (reason) => new CliError({ reason }),
  usage: (reason) => new UsageError({ reason })
})

const instances = Command.make("instances").pipe(
  Command.withDescription("Workflow instances"),
  Command.withSubcommands([instancesList, instancesShow, instancesObservations, instancesCancel])
)

const loadModule = (module: Option.Option<string>) =>
  Effect.gen(function*() {
    const fromEnv = yield* Config.option(Config.string("IRONFLOW_WORKFLOWS"))
    const path = Option.orElse(module, () => fromEnv)
    if (Option.isNone(path)) return [] as ReadonlyArray<unknown>
    const loaded = yield* Effect.tryPromise({
      try: () => importModule(path.value),
      catch: (cause) => new CliError({ reason: `cannot load ${path.value}: ${(cause as Error).message}` })
    })
    return Object.values(loaded)
  })

const diagram = Command.make(
  "diagram",
  {
    workflows: workflowsModule,
    dot: Options.boolean("dot").pipe(Options.withDescription("Graphviz DOT instead of Mermaid")),
    type: Args.text({ name: "TYPE" }).pipe(Args.withDescription("Workflow type"))
  },
  (options) =>
    Effect.gen(function*() {
      const exports = yield* loadModule(options.workflows)
      const view = exports.filter(StateMachineView.isStateMachineView).find((v) => v.workflow.type === options.type)
      const definition = view?.stateMachine()
      if (definition === undefined) {
        return yield* new CliError({
          reason:
            `no state machine for workflow type ${options.type}: export a StateMachineView with a stateMachine from the module given by --workflows (or IRONFLOW_WORKFLOWS)`
        })
      }
      yield* Console.log(options.dot ? definition.toDot() : definition.toMermaid())
    })
).pipe(Command.withDescription("Print a workflow's state machine as a Mermaid diagram (or --dot)"))

const projectionsList = Command.make(
  "list",
  { ...connection, json },
  (options) =>
    withStore(options, (store) =>
      Effect.gen(function*() {
        const positions = yield* store.projectionPositions
        if (options.json) return yield* printJson(positions)
        yield* Console.log(
          positions.length === 0 ? "no projections have run or been declared yet" : table(
            ["projection", "last global sequence", "events behind", "updated"],
            positions.map((p) => [p.name, String(p.lastSequence), String(p.eventsBehind), formatDate(p.updatedAt)])
          )
        )
      }))
).pipe(Command.withDescription("Projections, their checkpoints and how far behind they are"))

/** Refuses a name no projection is known by: no checkpoint, and not exported by the module. */
const unknownProjection = (name: string, known: ReadonlyArray<string>, module: boolean) =>
  new UsageError({
    reason: `no projection named ${name} is known to this database (${
      known.length === 0 ? "none is" : `known: ${known.join(", ")}`
    })${module ? "" : "; pass --workflows MODULE exporting it to rebuild one that has not run yet"}`
  })

const projectionsRebuild = Command.make(
  "rebuild",
  {
    ...connection,
    workflows: workflowsModule,
    name: Args.text({ name: "NAME" }).pipe(Args.withDescription("Projection name"))
  },
  (options) =>
    Effect.gen(function*() {
      const exports = yield* loadModule(options.workflows)
      const projection = exports.filter(Projection.isProjection).find((p) => p.name === options.name)
      yield* withStore(options, (store) =>
        Effect.gen(function*() {
          if (projection === undefined) {
            // A mistyped name would create a checkpoint at the start that holds back retention forever.
            const known = (yield* store.projectionPositions).map((p) => p.name)
            if (!known.includes(options.name)) {
              return yield* unknownProjection(options.name, known, Option.isSome(options.workflows))
            }
          }
          yield* store.resetProjection(
            options.name,
            projection === undefined
              ? Effect.void
              : (projection.reset as Effect.Effect<void, unknown, never>)
          )
        }))
      yield* Console.log(
        projection === undefined
          ? `${options.name} will replay every event (its read model was not cleared: pass --workflows MODULE exporting the projection to run its reset)`
          : `${options.name} was reset and will replay every event`
      )
    })
).pipe(Command.withDescription("Replay a projection from the first event (waits for its active runner's tick)"))

const projectionsForget = Command.make(
  "forget",
  {
    ...connection,
    name: Args.text({ name: "NAME" }).pipe(Args.withDescription("Projection name"))
  },
  (options) =>
    withStore(options, (store) =>
      Effect.gen(function*() {
        const known = (yield* store.projectionPositions).map((p) => p.name)
        if (!known.includes(options.name)) return yield* unknownProjection(options.name, known, true)
        yield* store.forgetProjection(options.name)
        yield* Console.log(
          `${options.name} is forgotten: it no longer holds back retention (a runner of it that is still running records it again)`
        )
      }))
).pipe(Command.withDescription("Remove a retired projection's checkpoint, so it no longer holds back retention"))

const prune = Command.make(
  "prune",
  {
    ...connection,
    json,
    olderThan: Options.text("older-than").pipe(
      Options.withDescription("Delete what was processed (or completed) longer ago than this, e.g. \"30 days\""),
      Options.mapEffect((text) =>
        // Duration reads "-5 days" as zero: a cutoff of now, which would prune everything eligible.
        text.trim().startsWith("-") ?
          Effect.fail(
            ValidationError.invalidValue(HelpDoc.p(`'${text}' is negative: give an age such as "30 days"`))
          ) :
          Option.match(Duration.decodeUnknown(text), {
            onNone: () =>
              Effect.fail(
                ValidationError.invalidValue(HelpDoc.p(`'${text}' is not a duration (try "30 days" or "12 hours")`))
              ),
            onSome: Effect.succeed
          })
      )
    ),
    completedInstances: Options.boolean("completed-instances").pipe(
      Options.withDescription("Also delete completed instances with their events and observations")
    ),
    dryRun: Options.boolean("dry-run").pipe(Options.withDescription("Report what would be deleted, delete nothing")),
    batchSize: Options.integer("batch-size").pipe(
      Options.withDescription("Rows per statement"),
      Options.mapEffect(atLeast(1)),
      Options.withDefault(500)
    )
  },
  (options) =>
    withStore(options, () =>
      Effect.gen(function*() {
        const report = yield* Retention.prune({
          olderThan: options.olderThan,
          completedInstances: options.completedInstances,
          batchSize: options.batchSize,
          dryRun: options.dryRun
        })
        if (options.json) return yield* printJson(report)
        yield* Console.log(
          `${
            report.dryRun ? "would delete" : "deleted"
          } (before ${report.cutoff.toISOString()}): ${report.outbox} processed effect rows, ${report.timers} processed timer rows, ${report.instances} completed instances with ${report.events} events and ${report.observations} observations`
        )
      }))
).pipe(
  Command.withDescription("Retention: delete processed effects and timers (and completed instances) older than an age")
)

const projections = Command.make("projections").pipe(
  Command.withDescription("Projections"),
  Command.withSubcommands([projectionsList, projectionsRebuild, projectionsForget])
)

const deadLettersList = Command.make(
  "list",
  { ...connection, timers, workflowType, workflowId, limit, offset, json },
  (options) =>
    withStore(options, (store) =>
      Effect.gen(function*() {
        const letters = yield* store.fetchDeadLetters(options.timers ? "timer" : "effect", {
          workflowType: Option.getOrUndefined(options.workflowType),
          workflowId: Option.getOrUndefined(options.workflowId),
          limit: options.limit,
          offset: options.offset
        })
        if (options.json) return yield* printJson(letters)
        yield* Console.log(letters.length === 0 ? "no dead letters" : deadLetterTable(letters))
      }))
).pipe(Command.withDescription("List dead-lettered effects (or --timers), newest first"))

const deadLettersCount = Command.make(
  "count",
  { ...connection, timers, workflowType, workflowId, json },
  (options) =>
    withStore(options, (store) =>
      Effect.gen(function*() {
        const count = yield* store.countDeadLetters(options.timers ? "timer" : "effect", {
          workflowType: Option.getOrUndefined(options.workflowType),
          workflowId: Option.getOrUndefined(options.workflowId)
        })
        yield* options.json ? printJson({ count }) : Console.log(String(count))
      }))
).pipe(Command.withDescription("Count dead-lettered effects (or --timers)"))

const deadLettersRetry = Command.make(
  "retry",
  { ...connection, timers, id: Args.text({ name: "ID" }).pipe(Args.withDescription("Dead letter id")) },
  (options) =>
    withStore(options, (store) =>
      Effect.gen(function*() {
        const retried = yield* store.retryDeadLetter(options.timers ? "timer" : "effect", options.id)
        if (!retried) {
          return yield* Effect.fail(
            new CliError({ reason: `${options.id} is not a dead ${options.timers ? "timer" : "effect"}` })
          )
        }
        yield* Console.log(`${options.id} will run again`)
      }))
).pipe(Command.withDescription("Make a dead letter run again (attempts reset); only rows that really are dead"))

const deadLetters = Command.make("dead-letters").pipe(
  Command.withDescription("Effects and timers whose retries gave up"),
  Command.withSubcommands([deadLettersList, deadLettersCount, deadLettersRetry])
)

const clockNote = (worker: WorkflowStore.WorkerInfo): string =>
  Option.match(worker.clockOffsetMillis, {
    onNone: () => "",
    onSome: (offset) => `, clock ${offset >= 0 ? "+" : "-"}${Duration.format(Duration.millis(Math.abs(offset)))}`
  }) + (Option.isSome(worker.claimsPaused) ? ", CLAIMS PAUSED" : "")

const stats = Command.make(
  "stats",
  { ...connection, json },
  (options) =>
    withStore(options, (store) =>
      Effect.gen(function*() {
        const rows = yield* store.queueStats
        const workers = yield* store.liveWorkers
        const registered = new Set(workers.flatMap((w) => w.workflowTypes))
        const byType = new Map<string, {
          workflowType: string
          pendingEffects: number
          readyEffects: number
          dueTimers: number
          pendingTimers: number
          expiredLeases: number
          longRunning: number
          deadLetters: number
          timedOutAttempts: number
          registered: boolean
        }>()
        for (const row of rows) {
          const entry = byType.get(row.workflowType) ?? {
            workflowType: row.workflowType,
            pendingEffects: 0,
            readyEffects: 0,
            dueTimers: 0,
            pendingTimers: 0,
            expiredLeases: 0,
            longRunning: 0,
            deadLetters: 0,
            timedOutAttempts: 0,
            registered: registered.has(row.workflowType)
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
          byType.set(row.workflowType, entry)
        }
        const types = Array.from(byType.values())
        const unregistered = types.filter((t) => !t.registered && t.pendingEffects + t.pendingTimers > 0)
        if (options.json) {
          return yield* printJson({
            types,
            liveWorkers: workers,
            unregisteredTypesWithPendingRows: unregistered.map((t) => t.workflowType)
          })
        }
        yield* Console.log(
          types.length === 0 ? "no pending effects, timers or dead letters" : table(
            [
              "type",
              "pending effects",
              "ready effects",
              "pending timers",
              "due timers",
              "expired leases",
              "held > 1 min",
              "dead letters",
              "timed-out attempts",
              "run by a live worker"
            ],
            types.map((t) => [
              t.workflowType,
              String(t.pendingEffects),
              String(t.readyEffects),
              String(t.pendingTimers),
              String(t.dueTimers),
              String(t.expiredLeases),
              String(t.longRunning),
              String(t.deadLetters),
              String(t.timedOutAttempts),
              t.registered ? "yes" : "no"
            ])
          )
        )
        const positions = yield* store.projectionPositions
        if (positions.length > 0) {
          yield* Console.log(
            `\nprojections: ${positions.map((p) => `${p.name} ${p.eventsBehind} event(s) behind`).join("; ")}`
          )
        }
        yield* Console.log(`\nlive workers: ${
          workers.length === 0
            ? "none"
            : workers.map((w) => `${w.workerId} (${w.host} pid ${w.pid}: ${w.workflowTypes.join(", ")}${clockNote(w)})`)
              .join("; ")
        }`)
        for (const w of workers) {
          if (Option.isSome(w.claimsPaused)) {
            yield* Console.log(`CLAIMS PAUSED on ${w.workerId}: ${w.claimsPaused.value}`)
          }
        }
        if (unregistered.length > 0 && workers.length > 0) {
          yield* Console.log(
            `rows of types no live worker runs (left pending, as ironflow 0.6.0 does): ${
              unregistered.map((t) => t.workflowType).join(", ")
            }`
          )
        }
      }))
).pipe(Command.withDescription(
  "Per workflow type: pending effects, due timers, expired leases, dead letters, timed-out attempts, and whether a live worker runs it"
))

const schedules = SchedulesCommand.make({
  connection,
  json,
  database: (options) => databaseLayer(options, false),
  table,
  formatDate,
  printJson,
  usage: (reason) => new UsageError({ reason })
})

const consoleCommand = ConsoleCommand.make({
  connection,
  workflows: workflowsModule,
  withStore,
  loadModule,
  usage: (reason) => new UsageError({ reason })
})

/**
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("ironflow").pipe(
  Command.withDescription("Operate ironflow: migrations, instances, dead letters, queue statistics"),
  Command.withSubcommands([
    migrateCommand,
    instances,
    deadLetters,
    stats,
    projections,
    diagram,
    prune,
    schedules,
    consoleCommand
  ])
)

// The installed package's version (package.json is one level above src/ and dist/ alike).
const version: string = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version

/**
 * @since 0.1.0
 * @category commands
 */
export const run = Command.run(command, { name: "ironflow", version })
