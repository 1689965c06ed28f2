/**
 * `ironflow dead-letters`: list, count and retry the effects (or `--timers`)
 * whose retries gave up, through the `DeadLetters` service.
 *
 * @internal
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as DeadLetters from "../../DeadLetters.js"
import type * as WorkflowStore from "../../WorkflowStore.js"
import {
  CliError,
  type Connection,
  connection,
  firstLine,
  formatDate,
  json,
  limit,
  offset,
  printJson,
  table,
  withStore,
  workflowType
} from "./shared.js"

/** Runs `f` with the dead-letter service on the chosen database. @internal */
export const withDeadLetters = <A, E>(
  options: Connection,
  f: (deadLetters: DeadLetters.DeadLetters["Type"]) => Effect.Effect<A, E, WorkflowStore.WorkflowStore>
) => withStore(options, () => Effect.flatMap(DeadLetters.make, f))

/** @internal */
export const deadLetterTable = (letters: ReadonlyArray<DeadLetters.DeadLetter>) =>
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

const timers = Options.boolean("timers").pipe(Options.withDescription("Timers instead of effects"))
const workflowId = Options.text("id").pipe(Options.withDescription("Only this workflow id"), Options.optional)

const list = Command.make(
  "list",
  { ...connection, timers, workflowType, workflowId, limit, offset, json },
  (options) =>
    withDeadLetters(options, (deadLetters) =>
      Effect.gen(function*() {
        const query = {
          workflowType: Option.getOrUndefined(options.workflowType),
          workflowId: Option.getOrUndefined(options.workflowId),
          limit: options.limit,
          offset: options.offset
        }
        const letters = yield* (options.timers ? deadLetters.fetchTimers(query) : deadLetters.fetch(query))
        if (options.json) return yield* printJson(letters)
        yield* Console.log(letters.length === 0 ? "no dead letters" : deadLetterTable(letters))
      }))
).pipe(Command.withDescription("List dead-lettered effects (or --timers), newest first"))

const count = Command.make(
  "count",
  { ...connection, timers, workflowType, workflowId, json },
  (options) =>
    withDeadLetters(options, (deadLetters) =>
      Effect.gen(function*() {
        const query = {
          workflowType: Option.getOrUndefined(options.workflowType),
          workflowId: Option.getOrUndefined(options.workflowId)
        }
        const count = yield* (options.timers ? deadLetters.countTimers(query) : deadLetters.count(query))
        yield* options.json ? printJson({ count }) : Console.log(String(count))
      }))
).pipe(Command.withDescription("Count dead-lettered effects (or --timers)"))

const retry = Command.make(
  "retry",
  { ...connection, timers, id: Args.text({ name: "ID" }).pipe(Args.withDescription("Dead letter id")) },
  (options) =>
    withDeadLetters(options, (deadLetters) =>
      Effect.gen(function*() {
        const retried = yield* (options.timers ? deadLetters.retryTimer(options.id) : deadLetters.retry(options.id))
        if (!retried) {
          return yield* new CliError({ reason: `${options.id} is not a dead ${options.timers ? "timer" : "effect"}` })
        }
        yield* Console.log(`${options.id} will run again`)
      }))
).pipe(Command.withDescription("Make a dead letter run again (attempts reset); only rows that really are dead"))

/** @internal */
export const command = Command.make("dead-letters").pipe(
  Command.withDescription("Effects and timers whose retries gave up"),
  Command.withSubcommands([list, count, retry])
)
