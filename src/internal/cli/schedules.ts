/**
 * `ironflow schedules`: list, pause, resume, trigger. The CLI has no workflow
 * code, so `trigger` inserts a tick row (its own unique key) that a running
 * runtime declaring the schedule fires at its next scheduler pass.
 *
 * @internal
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as WorkflowSchedule from "../../WorkflowSchedule.js"
import {
  type Connection,
  connection,
  databaseLayer,
  firstLine,
  formatDate,
  json,
  printJson,
  table,
  UsageError
} from "./shared.js"

/** @internal */
export const outcomeText = (tick: Option.Option<WorkflowSchedule.Tick>): string =>
  Option.match(tick, {
    onNone: () => "-",
    onSome: (t) =>
      `${t.outcome.status}${
        Option.match(t.outcome.error, { onNone: () => "", onSome: (error) => `: ${firstLine(error)}` })
      }${t.source === "trigger" ? " (triggered)" : ""}`
  })

const name = Args.text({ name: "NAME" }).pipe(Args.withDescription("Schedule name"))

const withSchedules = <A, E2>(
  options: Connection,
  f: (schedules: WorkflowSchedule.Schedules["Type"]) => Effect.Effect<A, E2>
) =>
  Effect.flatMap(WorkflowSchedule.makeSchedules, f).pipe(
    Effect.catchIf(
      (error): error is E2 & WorkflowSchedule.UnknownSchedule => error instanceof WorkflowSchedule.UnknownSchedule,
      (error) => Effect.fail(new UsageError({ reason: error.message }))
    ),
    Effect.provide(databaseLayer(options, false))
  )

const list = Command.make(
  "list",
  { ...connection, json },
  (options) =>
    withSchedules(options, (schedules) =>
      Effect.gen(function*() {
        const rows = yield* schedules.list
        if (options.json) return yield* printJson(rows)
        yield* Console.log(
          rows.length === 0
            ? "no schedules (they are declared by runtimes that run WorkflowSchedule.layer)"
            : table(
              ["name", "workflow type", "calendar", "catch-up", "next tick", "last tick", "last outcome", "paused"],
              rows.map((s) => [
                s.name,
                s.workflowType,
                WorkflowSchedule.describeCalendar(s.calendar),
                WorkflowSchedule.describeCatchUp(s.catchUp),
                s.paused ? "-" : formatDate(s.nextTickAt),
                formatDate(Option.map(s.lastTick, (t) => t.tickAt)),
                outcomeText(s.lastTick),
                s.paused ? "yes" : "no"
              ])
            )
        )
      }))
).pipe(Command.withDescription("Schedules: calendar, next tick, last tick and its outcome, paused"))

const pause = Command.make(
  "pause",
  { ...connection, name },
  (options) =>
    withSchedules(options, (schedules) =>
      Effect.zipRight(
        schedules.pause(options.name),
        Console.log(`${options.name} is paused: it fires no tick until resumed`)
      ))
).pipe(Command.withDescription("Stop a schedule from firing, in every process, until resumed"))

const resume = Command.make(
  "resume",
  { ...connection, name },
  (options) =>
    withSchedules(options, (schedules) =>
      Effect.zipRight(
        schedules.resume(options.name),
        Console.log(`${options.name} is resumed: its next tick is the first one from now`)
      ))
).pipe(Command.withDescription("Let a paused schedule fire again (the ticks of the pause are not fired)"))

const trigger = Command.make(
  "trigger",
  { ...connection, json, name },
  (options) =>
    withSchedules(options, (schedules) =>
      Effect.gen(function*() {
        const tick = yield* schedules.trigger(options.name)
        if (options.json) return yield* printJson(tick)
        yield* Console.log(
          `${options.name}: tick ${tick.id} at ${tick.tickAt.toISOString()} will be fired by a running runtime that declares the schedule`
        )
      }))
).pipe(Command.withDescription(
  "Fire one tick now (its own key): a tick row that a running runtime declaring the schedule fires"
))

/** @internal */
export const command = Command.make("schedules").pipe(
  Command.withDescription("Cron schedules declared by runtimes (WorkflowSchedule)"),
  Command.withSubcommands([list, pause, resume, trigger])
)
