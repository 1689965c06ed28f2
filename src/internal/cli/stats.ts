/**
 * `ironflow stats`: per workflow type, the queues (`WorkflowStore.summarizeByType`),
 * then projection lag and the live workers, their clocks and paused claims.
 *
 * @internal
 */
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as WorkflowStore from "../../WorkflowStore.js"
import { connection, json, printJson, table, withStore } from "./shared.js"

const clockNote = (worker: WorkflowStore.WorkerInfo): string =>
  Option.match(worker.clockOffsetMillis, {
    onNone: () => "",
    onSome: (offset) => `, clock ${offset >= 0 ? "+" : "-"}${Duration.format(Duration.millis(Math.abs(offset)))}`
  }) + (Option.isSome(worker.claimsPaused) ? ", CLAIMS PAUSED" : "")

// `stats --json` keeps the field names and order it was published with (`registered` for `runByLiveWorker`).
const toJson = (t: WorkflowStore.TypeSummary) => ({
  workflowType: t.workflowType,
  pendingEffects: t.pendingEffects,
  readyEffects: t.readyEffects,
  dueTimers: t.dueTimers,
  pendingTimers: t.pendingTimers,
  expiredLeases: t.expiredLeases,
  longRunning: t.longRunning,
  deadLetters: t.deadLetters,
  timedOutAttempts: t.timedOutAttempts,
  registered: t.runByLiveWorker
})

const typeTable = (types: ReadonlyArray<WorkflowStore.TypeSummary>) =>
  table(
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
      t.runByLiveWorker ? "yes" : "no"
    ])
  )

const workerLine = (workers: ReadonlyArray<WorkflowStore.WorkerInfo>) =>
  `\nlive workers: ${
    workers.length === 0
      ? "none"
      : workers.map((w) => `${w.workerId} (${w.host} pid ${w.pid}: ${w.workflowTypes.join(", ")}${clockNote(w)})`)
        .join("; ")
  }`

/** @internal */
export const command = Command.make(
  "stats",
  { ...connection, json },
  (options) =>
    withStore(options, (store) =>
      Effect.gen(function*() {
        const rows = yield* store.queueStats
        const workers = yield* store.liveWorkers
        const types = WorkflowStore.summarizeByType(rows, new Set(workers.flatMap((w) => w.workflowTypes)))
        const unregistered = types.filter((t) => !t.runByLiveWorker && t.pendingEffects + t.pendingTimers > 0)
        if (options.json) {
          return yield* printJson({
            types: types.map(toJson),
            liveWorkers: workers,
            unregisteredTypesWithPendingRows: unregistered.map((t) => t.workflowType)
          })
        }
        yield* Console.log(types.length === 0 ? "no pending effects, timers or dead letters" : typeTable(types))
        const positions = yield* store.projectionPositions
        if (positions.length > 0) {
          yield* Console.log(
            `\nprojections: ${positions.map((p) => `${p.name} ${p.eventsBehind} event(s) behind`).join("; ")}`
          )
        }
        yield* Console.log(workerLine(workers))
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
