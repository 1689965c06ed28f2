/**
 * What the command groups share: the connection and listing options, the
 * database and the store, the application's module, the service built from
 * its definitions, and the table, date and JSON printers.
 *
 * @internal
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Database from "../../Database.js"
import * as PgWorkflowStore from "../../PgWorkflowStore.js"
import type * as Workflow from "../../Workflow.js"
import { WorkflowRegistry } from "../../WorkflowRegistry.js"
import * as WorkflowRegistryModule from "../../WorkflowRegistry.js"
import * as WorkflowService from "../../WorkflowService.js"
import * as WorkflowStore from "../../WorkflowStore.js"
import { importModule } from "../moduleLoader.js"

// The two error classes are public: `Cli.ts` re-exports them (bin.ts maps UsageError to exit code 2).

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

/** @internal */
export const connection = {
  databaseUrl: Options.redacted("database-url").pipe(
    Options.withDescription("PostgreSQL connection URL (default: DATABASE_URL, else the embedded database)"),
    Options.optional
  ),
  dataDir: Options.text("data-dir").pipe(
    Options.withDescription("Data directory of the embedded database (default: IRONFLOW_DATA_DIR or .ironflow)"),
    Options.optional
  )
}

/** @internal */
export interface Connection {
  readonly databaseUrl: Option.Option<Redacted.Redacted>
  readonly dataDir: Option.Option<string>
}

/** @internal */
export const json = Options.boolean("json").pipe(Options.withDescription("Print JSON instead of a table"))

/** @internal */
export const workflowType = Options.text("type").pipe(
  Options.withDescription("Only this workflow type"),
  Options.optional
)

/** An integer option of at least `min`: anything less is a bad argument (exit 2). @internal */
export const atLeast = (min: number) => (value: number) =>
  value >= min
    ? Effect.succeed(value)
    : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`${value} is not allowed here: give ${min} or more`)))

/** @internal */
export const limit = Options.integer("limit").pipe(
  Options.withDescription("At most this many rows (default 100)"),
  Options.mapEffect(atLeast(1)),
  Options.withDefault(100)
)

/** @internal */
export const offset = Options.integer("offset").pipe(
  Options.withDescription("Skip this many rows"),
  Options.mapEffect(atLeast(0)),
  Options.withDefault(0)
)

/** @internal */
export const workflowsModule = Options.text("workflows").pipe(
  Options.withDescription(
    "A module whose exported workflow definitions let `show` rebuild the typed state (default: IRONFLOW_WORKFLOWS): " +
      "a .js module, or a .ts module when tsx is installed"
  ),
  Options.optional
)

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

/** The chosen database (created, for the embedded one, only when `create`). @internal */
export const databaseLayer = (options: Connection, create: boolean) =>
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

/** Runs `f` with a store on the chosen database (migrations applied only by `migrate`). @internal */
export const withStore = <A, E>(
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

/**
 * Every export of the application's module (`--workflows`, else
 * IRONFLOW_WORKFLOWS; none when neither is given): callers keep the workflow
 * definitions, views or projections they use.
 *
 * @internal
 */
export const loadExports = (module: Option.Option<string>) =>
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

/**
 * The application's service over the loaded definitions, for what needs no
 * handler to run: typed state, cancellation.
 *
 * @internal
 */
export const serviceFor = (definitions: ReadonlyArray<Workflow.Any>) =>
  WorkflowRegistryModule.make(definitions as ReadonlyArray<Workflow.WithoutEffects>).pipe(
    Effect.flatMap((registry) => Effect.provideService(WorkflowService.make, WorkflowRegistry, registry))
  )

/** @internal */
export const formatDate = (d: Option.Option<Date> | Date) =>
  d instanceof Date ? d.toISOString() : Option.match(d, { onNone: () => "-", onSome: (x) => x.toISOString() })

/** @internal */
export const firstLine = (text: string) => text.split("\n")[0]

/** @internal */
export const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()
  return [line(headers), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n")
}

/** @internal */
export const printJson = (value: unknown) =>
  Console.log(
    JSON.stringify(
      value,
      // Options arrive here already turned into { _id: "Option", ... } by their toJSON.
      (_key, v) => typeof v === "object" && v !== null && v._id === "Option" ? (v._tag === "Some" ? v.value : null) : v,
      2
    )
  )
