/**
 * `ironflow instances`: list, show (state, events, pending rows, dead
 * letters), observations, and cancel (in `cancel.ts`).
 *
 * @internal
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as DeadLetters from "../../DeadLetters.js"
import * as Workflow from "../../Workflow.js"
import * as WorkflowStore from "../../WorkflowStore.js"
import * as CancelCommand from "./cancel.js"
import { deadLetterTable } from "./deadLetters.js"
import {
  CliError,
  connection,
  firstLine,
  formatDate,
  json,
  limit,
  loadExports,
  offset,
  printJson,
  serviceFor,
  table,
  withStore,
  workflowsModule,
  workflowType
} from "./shared.js"

const typeArg = Args.text({ name: "TYPE" }).pipe(Args.withDescription("Workflow type"))
const idArg = Args.text({ name: "ID" }).pipe(Args.withDescription("Workflow id"))

const list = Command.make(
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

/** Everything `show` prints about one instance (its JSON, with `--json`). */
const fetchView = (workflowType: string, workflowId: string, module: Option.Option<string>) =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore.WorkflowStore
    const instance = yield* store.fetchInstance(workflowType, workflowId)
    if (Option.isNone(instance)) {
      return yield* new CliError({ reason: `no instance ${workflowType}:${workflowId}` })
    }
    const events = yield* store.fetchEvents(workflowType, workflowId)
    const pending = yield* store.fetchPending(workflowType, workflowId)
    const deadLetters = yield* DeadLetters.make
    const deadEffects = yield* deadLetters.fetch({ workflowType, workflowId })
    const deadTimers = yield* deadLetters.fetchTimers({ workflowType, workflowId })
    const definition = (yield* loadExports(module)).filter(Workflow.isWorkflow).find((w) => w.type === workflowType)
    const state = definition === undefined ? Option.none() : Option.some(
      yield* serviceFor([definition]).pipe(
        Effect.flatMap((service) => service.fetchLatestStateDynamic(workflowType, workflowId)),
        Effect.catchAll((error) => Effect.succeed({ error: error.message }))
      )
    )
    return { instance: instance.value, state, events, pending, deadLetters: [...deadEffects, ...deadTimers] }
  })

type View = Effect.Effect.Success<ReturnType<typeof fetchView>>

const printView = (view: View) =>
  Effect.gen(function*() {
    const i = view.instance
    yield* Console.log(`${i.workflowType}:${i.workflowId}`)
    yield* Console.log(
      `  created ${formatDate(i.createdAt)}, ${i.eventCount} events, last event ${formatDate(i.lastEventAt)}, ${
        Option.isSome(i.completedAt) ? `completed ${formatDate(i.completedAt)}` : "active"
      }`
    )
    yield* Console.log(
      Option.match(view.state, {
        onNone: () => "\nstate: (pass --workflows MODULE to rebuild the typed state)",
        onSome: (s) => `\nstate: ${JSON.stringify(s)}`
      })
    )
    yield* Console.log("\nevents:")
    yield* Console.log(
      table(
        ["seq", "global", "at", "payload"],
        view.events.map((e) => [
          String(e.sequence),
          String(e.globalSequence),
          formatDate(e.createdAt),
          JSON.stringify(e.payload)
        ])
      )
    )
    yield* Console.log("\npending effects and timers:")
    yield* Console.log(
      view.pending.length === 0 ? "  none" : table(
        ["kind", "id", "due", "attempts", "key", "leased by", "last error", "payload"],
        view.pending.map((p) => [
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
  })

const show = Command.make(
  "show",
  { ...connection, json, workflows: workflowsModule, type: typeArg, id: idArg },
  (options) =>
    withStore(options, () =>
      Effect.flatMap(
        fetchView(options.type, options.id, options.workflows),
        (view) => options.json ? printJson(view) : printView(view)
      ))
).pipe(Command.withDescription("Show an instance: state, events, pending effects and timers, dead letters"))

const observations = Command.make(
  "observations",
  { ...connection, json, type: typeArg, id: idArg },
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

/** @internal */
export const command = Command.make("instances").pipe(
  Command.withDescription("Workflow instances"),
  Command.withSubcommands([list, show, observations, CancelCommand.command])
)
