/**
 * `ironflow prune --older-than AGE`: retention (`Retention.prune`) of
 * processed effects and timers, and with `--completed-instances` of
 * completed instances with their events and observations.
 *
 * @internal
 */
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Retention from "../../Retention.js"
import { atLeast, connection, json, printJson, withStore } from "./shared.js"

const invalid = (text: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(text)))

const olderThan = Options.text("older-than").pipe(
  Options.withDescription("Delete what was processed (or completed) longer ago than this, e.g. \"30 days\""),
  Options.mapEffect((text) =>
    // Duration reads "-5 days" as zero: a cutoff of now, which would prune everything eligible.
    text.trim().startsWith("-")
      ? invalid(`'${text}' is negative: give an age such as "30 days"`)
      : Option.match(Duration.decodeUnknown(text), {
        onNone: () => invalid(`'${text}' is not a duration (try "30 days" or "12 hours")`),
        onSome: Effect.succeed
      })
  )
)

/** @internal */
export const command = Command.make(
  "prune",
  {
    ...connection,
    json,
    olderThan,
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
