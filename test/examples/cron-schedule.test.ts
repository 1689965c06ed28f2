import type { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect, Layer, Option, Schema, TestClock } from "effect"
import {
  Decision,
  PgWorkflowStore,
  RuntimeConfig,
  TestRuntime,
  Workflow,
  WorkflowRegistry,
  WorkflowRuntime,
  WorkflowSchedule
} from "ironflow"

class Run extends Schema.TaggedClass<Run>()("Run", { day: Schema.String }) {}
class Ran extends Schema.TaggedClass<Ran>()("Ran", {}) {}

// One instance per day: the input is built from the tick's time, the instance is its workflow id.
const DailyReport = Workflow.make({
  type: "daily_report",
  state: Schema.Struct({ done: Schema.Boolean }),
  input: Run,
  event: Ran,
  initialState: { done: false },
  workflowId: { field: "day" },
  evolve: () => ({ done: true }),
  decide: () => Decision.accept(new Ran()),
  isTerminal: (state) => state.done
})

// Every day at 03:00 in Berlin (02:00 UTC in winter); a tick missed while nothing ran fires once at start.
const nightly = WorkflowSchedule.cron({
  name: "daily-report",
  workflow: DailyReport,
  expression: "0 3 * * *",
  timeZone: "Europe/Berlin",
  input: (tick) => new Run({ day: tick.toISOString().slice(0, 10) }),
  catchUp: "latest"
})

// The runtime fires the ticks (each becomes a timer); the schedule layer declares and creates them.
const App = (database: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  Layer.mergeAll(WorkflowRuntime.layer, WorkflowSchedule.layer([nightly], { pollInterval: "50 millis" })).pipe(
    Layer.provide(WorkflowRegistry.layer([DailyReport])),
    Layer.provide(RuntimeConfig.layer({ timerPollInterval: "50 millis", maxClockSkew: "off" })),
    Layer.provideMerge(PgWorkflowStore.layer),
    Layer.provideMerge(database)
  )

for (const [name, database] of [["embedded", TestRuntime.embedded()], ["postgres", TestRuntime.postgres()]] as const) {
  layer(App(database), { timeout: 60_000 })(`the daily report schedule on ${name}`, (it) => {
    it.effect("runs the report of each day at 03:00 Berlin time", () =>
      Effect.gen(function*() {
        // The TestClock starts at 1970-01-01T00:00:00Z: the first tick is at 02:00 UTC.
        yield* TestClock.adjust("2 hours")
        yield* TestRuntime.awaitTerminal(DailyReport, "1970-01-01")
        yield* TestClock.adjust("1 day")
        yield* TestRuntime.awaitTerminal(DailyReport, "1970-01-02")

        const schedules = yield* WorkflowSchedule.Schedules
        const [report] = yield* schedules.list
        assert.strictEqual(report.name, "daily-report")
        assert.deepStrictEqual(report.nextTickAt, Option.some(new Date("1970-01-03T02:00:00.000Z")))
      }))
  })
}
