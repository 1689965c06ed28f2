/**
 * The `WorkflowSchedule` contract (issue #14 item 1, cron schedules) run
 * against `PgWorkflowStore` over a given database: real PostgreSQL or the
 * embedded PGlite.
 *
 * Time is the TestClock, set per test to a known instant; the scheduler and
 * the workers look at the database on real time (every 50 ms here), while
 * what is due is decided by the Clock. Each test uses its own workflow type
 * and schedule names, and waits (real time) for what the runtime writes.
 */
import type { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Context, Duration, Effect, Exit, Layer, Option, Schema, Scope, TestClock } from "effect"
import {
  Decision,
  PgWorkflowStore,
  RuntimeConfig,
  Workflow,
  WorkflowRegistry,
  WorkflowRuntime,
  WorkflowSchedule,
  WorkflowStore
} from "ironflow"
import { assertBackend } from "../support/database.js"
import { awaitSome, fastConfig, uniqueType } from "../support/runtimeHarness.js"

class Fire extends Schema.TaggedClass<Fire>()("Fire", { id: Schema.String, at: Schema.String }) {}
class Fired extends Schema.TaggedClass<Fired>()("Fired", { at: Schema.String }) {}

/** Accepts every tick, duplicates included: one `Fired` event per applied tick. */
const makeTickWorkflow = (type: string) =>
  Workflow.make({
    type,
    state: Schema.Struct({ count: Schema.Number }),
    input: Fire,
    event: Fired,
    initialState: { count: 0 },
    workflowId: { field: "id" },
    evolve: (state) => ({ count: state.count + 1 }),
    decide: (_now, _state, input) => Decision.accept(new Fired({ at: input.at })),
    isTerminal: () => false
  })
type TickWorkflow = ReturnType<typeof makeTickWorkflow>

const fire = (id: string) => (tick: Date) => new Fire({ id, at: tick.toISOString() })

/** A runtime and the schedule layer over the suite's store, in a scope of their own. */
const startScheduler = (
  workflow: TickWorkflow,
  schedules: ReadonlyArray<WorkflowSchedule.WorkflowSchedule<any>>,
  workerId?: string
) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const shutdown = Scope.close(scope, Exit.void)
    yield* Effect.addFinalizer(() => shutdown)
    const layer = Layer.mergeAll(
      WorkflowRuntime.layer,
      WorkflowSchedule.layer(schedules, { pollInterval: "50 millis" })
    ).pipe(
      Layer.provide(WorkflowRegistry.layer([workflow])),
      Layer.provide(RuntimeConfig.layer({ ...fastConfig, ...(workerId === undefined ? {} : { workerId }) }))
    )
    const context = yield* Layer.buildWithScope(layer, scope).pipe(Effect.onError(() => shutdown))
    return { schedules: Context.get(context, WorkflowSchedule.Schedules), shutdown }
  })

/** The `at` of every `Fired` event of an instance, in order. */
const firedAt = (type: string, id: string) =>
  Effect.map(
    Effect.flatMap(WorkflowStore.WorkflowStore, (store) => store.fetchEvents(type, id)),
    (events) => events.map((e) => (e.payload as { readonly at: string }).at)
  )

const awaitFired = (type: string, id: string, count: number) =>
  awaitSome(
    `${count} fired tick(s) of ${type}`,
    Effect.map(firedAt(type, id), (at) => (at.length >= count ? Option.some(at) : Option.none())),
    { timeout: "20 seconds" }
  )

const schedulesService = WorkflowSchedule.makeSchedules

const info = (name: string) =>
  Effect.flatMap(
    schedulesService,
    (s) => Effect.map(s.list, (rows) => Option.fromNullable(rows.find((r) => r.name === name)))
  )

/** Waits until a schedule's next tick is `at` (a pass has run at the current time) and nothing is left unfired. */
const awaitNext = (name: string, at: string) =>
  awaitSome(
    `${name}'s next tick at ${at}`,
    Effect.gen(function*() {
      const found = yield* info(name)
      if (Option.isNone(found) || !Option.contains(Option.map(found.value.nextTickAt, (d) => d.toISOString()), at)) {
        return Option.none()
      }
      const ticks = yield* Effect.flatMap(schedulesService, (s) => s.ticks(name))
      const settled = ticks.every((t) => t.outcome.status === "applied" || t.outcome.status === "failed")
      return settled ? Option.some(found.value) : Option.none()
    }),
    { timeout: "20 seconds" }
  )

/** A duration of hours, minutes and seconds. */
const hms = (h: number, m: number, sec = 0) => Duration.seconds((h * 60 + m) * 60 + sec)

const setTime = (iso: string) => TestClock.setTime(Date.parse(iso))

const uniqueName = (prefix: string) => `${prefix}-${uniqueType("s")}`

export const suite = (label: string, database: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  it.layer(PgWorkflowStore.layer.pipe(Layer.provideMerge(database)), { timeout: "180 seconds" })(
    `WorkflowSchedule (${label})`,
    (it) => {
      it.effect(`runs on ${label}`, () => assertBackend(label))

      describe("calendars", () => {
        it.scoped("a cron expression in a time zone ticks at that zone's local time", () =>
          Effect.gen(function*() {
            const type = uniqueType("cron_tz")
            const W = makeTickWorkflow(type)
            yield* setTime("2031-01-10T00:00:05.000Z")
            const kolkata = WorkflowSchedule.cron({
              name: uniqueName("kolkata"),
              workflow: W,
              expression: "0 9 * * *",
              timeZone: "Asia/Kolkata",
              input: fire("kolkata"),
              catchUp: "latest"
            })
            const newYork = WorkflowSchedule.cron({
              name: uniqueName("new-york"),
              workflow: W,
              expression: "0 9 * * *",
              timeZone: "America/New_York",
              input: fire("new-york"),
              catchUp: "latest"
            })
            yield* startScheduler(W, [kolkata, newYork])
            // 09:00 in Kolkata is 03:30 UTC; 09:00 in New York (January, UTC-5) is 14:00 UTC.
            yield* awaitNext(kolkata.name, "2031-01-10T03:30:00.000Z")
            yield* awaitNext(newYork.name, "2031-01-10T14:00:00.000Z")
            yield* TestClock.adjust(hms(3, 30))
            assert.deepStrictEqual(yield* awaitFired(type, "kolkata", 1), ["2031-01-10T03:30:00.000Z"])
            yield* awaitNext(kolkata.name, "2031-01-11T03:30:00.000Z")
            yield* TestClock.adjust(hms(10, 30))
            assert.deepStrictEqual(yield* awaitFired(type, "new-york", 1), ["2031-01-10T14:00:00.000Z"])
            const listed = yield* awaitNext(newYork.name, "2031-01-11T14:00:00.000Z")
            assert.strictEqual(WorkflowSchedule.describeCalendar(listed.calendar), "0 9 * * * (America/New_York)")
            assert.strictEqual(Option.getOrThrow(listed.lastTick).outcome.status, "applied")
            assert.deepStrictEqual(yield* firedAt(type, "kolkata"), ["2031-01-10T03:30:00.000Z"])
          }))

        it.scoped("an interval ticks on multiples of it", () =>
          Effect.gen(function*() {
            const type = uniqueType("interval")
            const W = makeTickWorkflow(type)
            yield* setTime("2031-02-01T00:00:05.000Z")
            const every = WorkflowSchedule.interval({
              name: uniqueName("every"),
              workflow: W,
              every: "10 minutes",
              input: fire("every")
            })
            yield* startScheduler(W, [every])
            yield* awaitNext(every.name, "2031-02-01T00:10:00.000Z")
            for (const minute of ["10", "20", "30"]) {
              yield* TestClock.adjust(minute === "10" ? hms(0, 9, 55) : "10 minutes")
              yield* awaitNext(every.name, `2031-02-01T00:${Number(minute) + 10}:00.000Z`)
            }
            assert.deepStrictEqual(yield* firedAt(type, "every"), [
              "2031-02-01T00:10:00.000Z",
              "2031-02-01T00:20:00.000Z",
              "2031-02-01T00:30:00.000Z"
            ])
          }))
      })

      describe("catch-up of ticks missed while nothing ran", () => {
        const missed = (catchUp: WorkflowSchedule.CatchUp, day: string) =>
          Effect.gen(function*() {
            const type = uniqueType("catch_up")
            const W = makeTickWorkflow(type)
            yield* setTime(`${day}T00:00:05.000Z`)
            const hourly = WorkflowSchedule.interval({
              name: uniqueName("hourly"),
              workflow: W,
              every: "1 hour",
              input: fire("hourly"),
              catchUp
            })
            const running = yield* startScheduler(W, [hourly])
            yield* awaitNext(hourly.name, `${day}T01:00:00.000Z`)
            yield* running.shutdown
            // Nothing runs from 00:00:05 to 05:30:05: the ticks of 01:00 to 05:00 are missed.
            yield* TestClock.adjust(hms(5, 30))
            yield* startScheduler(W, [hourly])
            yield* awaitNext(hourly.name, `${day}T06:00:00.000Z`)
            const afterRestart = yield* firedAt(type, "hourly")
            // On time again: the 06:00 tick fires whatever the policy.
            yield* TestClock.adjust(hms(0, 29, 55))
            yield* awaitNext(hourly.name, `${day}T07:00:00.000Z`)
            return { afterRestart, all: yield* firedAt(type, "hourly") }
          })

        it.scoped("skip: none of them; the next tick on time", () =>
          Effect.gen(function*() {
            const { afterRestart, all } = yield* missed("skip", "2031-03-01")
            assert.deepStrictEqual(afterRestart, [])
            assert.deepStrictEqual(all, ["2031-03-01T06:00:00.000Z"])
          }))

        it.scoped("latest: the most recent one, once", () =>
          Effect.gen(function*() {
            const { afterRestart, all } = yield* missed("latest", "2031-03-02")
            assert.deepStrictEqual(afterRestart, ["2031-03-02T05:00:00.000Z"])
            assert.deepStrictEqual(all, ["2031-03-02T05:00:00.000Z", "2031-03-02T06:00:00.000Z"])
          }))

        it.scoped("all with a bound: the n most recent ones, oldest first", () =>
          Effect.gen(function*() {
            const { afterRestart } = yield* missed({ all: 3 }, "2031-03-03")
            assert.deepStrictEqual(afterRestart, [
              "2031-03-03T03:00:00.000Z",
              "2031-03-03T04:00:00.000Z",
              "2031-03-03T05:00:00.000Z"
            ])
          }))

        it.scoped("all with a bound larger than the backlog: every missed tick", () =>
          Effect.gen(function*() {
            const { afterRestart } = yield* missed({ all: 100 }, "2031-03-04")
            assert.deepStrictEqual(afterRestart, [1, 2, 3, 4, 5].map((h) => `2031-03-04T0${h}:00:00.000Z`))
          }))
      })

      it.scoped("a backlog larger than one pass hands over is fired whole, oldest first", () =>
        Effect.gen(function*() {
          const type = uniqueType("backlog")
          const W = makeTickWorkflow(type)
          yield* setTime("2031-03-05T00:00:05.000Z")
          const minutely = WorkflowSchedule.interval({
            name: uniqueName("backlog"),
            workflow: W,
            every: "1 minute",
            input: fire("backlog"),
            catchUp: { all: 1000 }
          })
          const running = yield* startScheduler(W, [minutely])
          yield* awaitNext(minutely.name, "2031-03-05T00:01:00.000Z")
          yield* running.shutdown
          // 600 ticks missed: more than one pass hands over (256).
          yield* TestClock.adjust(hms(10, 0))
          yield* startScheduler(W, [minutely])
          yield* awaitNext(minutely.name, "2031-03-05T10:01:00.000Z")
          const at = yield* awaitFired(type, "backlog", 600)
          assert.deepStrictEqual(
            at,
            Array.from(
              { length: 600 },
              (_, i) => new Date(Date.parse("2031-03-05T00:01:00.000Z") + i * 60_000).toISOString()
            )
          )
        }))

      it.scoped("each tick is applied exactly once with two runtimes on one database", () =>
        Effect.gen(function*() {
          const type = uniqueType("two_runtimes")
          const W = makeTickWorkflow(type)
          yield* setTime("2031-04-01T00:00:05.000Z")
          const minutely = WorkflowSchedule.interval({
            name: uniqueName("minutely"),
            workflow: W,
            every: "1 minute",
            input: fire("minutely"),
            catchUp: { all: 1000 }
          })
          yield* startScheduler(W, [minutely], `a-${type}`)
          yield* startScheduler(W, [minutely], `b-${type}`)
          yield* awaitNext(minutely.name, "2031-04-01T00:01:00.000Z")
          // Ticks one by one, then a backlog of 30 that both schedulers see due at once.
          for (let i = 1; i <= 5; i++) {
            yield* TestClock.adjust(i === 1 ? "55 seconds" : "1 minute")
            yield* awaitFired(type, "minutely", i)
          }
          yield* TestClock.adjust("30 minutes")
          yield* awaitNext(minutely.name, "2031-04-01T00:36:00.000Z")
          const at = yield* firedAt(type, "minutely")
          assert.strictEqual(at.length, 35)
          assert.strictEqual(new Set(at).size, 35)
          // Exactly once is about the set of ticks: two runtimes may apply them in either order.
          assert.deepStrictEqual(
            [...at].sort(),
            Array.from(
              { length: 35 },
              (_, i) => new Date(Date.parse("2031-04-01T00:01:00.000Z") + i * 60_000).toISOString()
            )
          )
        }))

      it.scoped("at start, a changed calendar gets its next tick recomputed, a removed schedule is deleted", () =>
        Effect.gen(function*() {
          const type = uniqueType("change")
          const W = makeTickWorkflow(type)
          yield* setTime("2031-05-01T00:00:05.000Z")
          const changed = uniqueName("changed")
          const kept = uniqueName("kept")
          const removed = uniqueName("removed")
          const first = yield* startScheduler(W, [
            WorkflowSchedule.interval({
              name: changed,
              workflow: W,
              every: "1 hour",
              input: fire(changed),
              catchUp: "latest"
            }),
            WorkflowSchedule.interval({
              name: kept,
              workflow: W,
              every: "30 minutes",
              input: fire(kept),
              catchUp: "latest"
            }),
            WorkflowSchedule.cron({ name: removed, workflow: W, expression: "0 * * * *", input: fire(removed) })
          ])
          yield* awaitNext(changed, "2031-05-01T01:00:00.000Z")
          yield* awaitNext(kept, "2031-05-01T00:30:00.000Z")
          yield* awaitNext(removed, "2031-05-01T01:00:00.000Z")
          yield* first.shutdown
          yield* TestClock.adjust(hms(1, 15))
          yield* startScheduler(W, [
            WorkflowSchedule.interval({
              name: changed,
              workflow: W,
              every: "2 hours",
              input: fire(changed),
              catchUp: "latest"
            }),
            WorkflowSchedule.interval({
              name: kept,
              workflow: W,
              every: "30 minutes",
              input: fire(kept),
              catchUp: "latest"
            })
          ])
          // Unchanged: its stored next tick (00:30) stayed, so the latest missed tick (01:00) fires.
          yield* awaitNext(kept, "2031-05-01T01:30:00.000Z")
          assert.deepStrictEqual(yield* firedAt(type, kept), ["2031-05-01T01:00:00.000Z"])
          // Changed: the next tick is computed from now (01:15:05) on the new calendar; the old 01:00 never fires.
          const listed = yield* awaitNext(changed, "2031-05-01T02:00:00.000Z")
          assert.strictEqual(WorkflowSchedule.describeCalendar(listed.calendar), "every 2h")
          assert.deepStrictEqual(yield* firedAt(type, changed), [])
          assert.isTrue(Option.isNone(yield* info(removed)))
        }))

      it.scoped("pause, resume and trigger", () =>
        Effect.gen(function*() {
          const type = uniqueType("pause")
          const W = makeTickWorkflow(type)
          yield* setTime("2031-06-01T00:00:05.000Z")
          const name = uniqueName("paused")
          const { schedules } = yield* startScheduler(W, [
            WorkflowSchedule.interval({ name, workflow: W, every: "1 hour", input: fire(name), catchUp: "latest" })
          ])
          yield* awaitNext(name, "2031-06-01T01:00:00.000Z")
          yield* schedules.pause(name)
          yield* schedules.pause(name)
          yield* TestClock.adjust(hms(0, 59, 55))
          // A trigger fires even a paused schedule, now; the paused 01:00 tick is never created.
          const triggered = yield* schedules.trigger(name)
          assert.strictEqual(triggered.source, "trigger")
          assert.strictEqual(triggered.key, `trigger:${triggered.id}`)
          assert.deepStrictEqual(yield* awaitFired(type, name, 1), ["2031-06-01T01:00:00.000Z"])
          const ticks = yield* awaitSome(
            "the triggered tick applied",
            Effect.map(schedules.ticks(name), (ticks) =>
              ticks.every((t) => t.outcome.status === "applied") ? Option.some(ticks) : Option.none())
          )
          assert.deepStrictEqual(
            ticks.map((t) =>
              t.source
            ),
            ["trigger"]
          )
          const paused = Option.getOrThrow(yield* info(name))
          assert.isTrue(paused.paused)
          assert.strictEqual(Option.getOrThrow(paused.lastTick).outcome.status, "applied")
          // Resumed: the next tick is the first one after now; the paused one is not fired.
          yield* schedules.resume(name)
          yield* awaitNext(name, "2031-06-01T02:00:00.000Z")
          yield* TestClock.adjust("1 hour")
          yield* awaitNext(name, "2031-06-01T03:00:00.000Z")
          assert.deepStrictEqual(yield* firedAt(type, name), ["2031-06-01T01:00:00.000Z", "2031-06-01T02:00:00.000Z"])
          for (const op of [schedules.pause, schedules.resume, schedules.trigger, schedules.ticks]) {
            const error = yield* Effect.flip(op("no-such-schedule"))
            assert.strictEqual(error._tag, "UnknownSchedule")
          }
        }))

      it.scoped("a tick whose input cannot be built fails alone; the schedule goes on", () =>
        Effect.gen(function*() {
          const type = uniqueType("bad_input")
          const W = makeTickWorkflow(type)
          yield* setTime("2031-07-01T00:00:05.000Z")
          const name = uniqueName("flaky")
          let calls = 0
          yield* startScheduler(W, [
            WorkflowSchedule.interval({
              name,
              workflow: W,
              every: "1 hour",
              input: (tick) => {
                if (++calls === 1) throw new Error("no input this time")
                return fire(name)(tick)
              }
            })
          ])
          yield* awaitNext(name, "2031-07-01T01:00:00.000Z")
          yield* TestClock.adjust(hms(0, 59, 55))
          const failed = yield* awaitNext(name, "2031-07-01T02:00:00.000Z")
          const outcome = Option.getOrThrow(failed.lastTick).outcome
          assert.strictEqual(outcome.status, "failed")
          assert.strictEqual(Option.getOrThrow(outcome.error), "the input function threw: no input this time")
          yield* TestClock.adjust("1 hour")
          yield* awaitNext(name, "2031-07-01T03:00:00.000Z")
          assert.deepStrictEqual(yield* firedAt(type, name), ["2031-07-01T02:00:00.000Z"])
        }))

      it.scoped("a schedule that cannot be declared fails the layer with InvalidSchedule and writes nothing", () =>
        Effect.gen(function*() {
          const type = uniqueType("invalid")
          const W = makeTickWorkflow(type)
          const Other = makeTickWorkflow(uniqueType("unregistered"))
          const input = fire("x")
          const name = uniqueName("invalid")
          const cases: ReadonlyArray<readonly [WorkflowSchedule.WorkflowSchedule<any>, string]> = [
            [WorkflowSchedule.cron({ name, workflow: W, expression: "61 * * * *", input }), "does not parse"],
            [
              WorkflowSchedule.cron({ name, workflow: W, expression: "0 * * * *", timeZone: "Nowhere/City", input }),
              "time zone"
            ],
            [WorkflowSchedule.interval({ name, workflow: W, every: "500 millis", input }), "at least 1 second"],
            [WorkflowSchedule.interval({ name, workflow: W, every: "1 hour", input, catchUp: { all: 0 } }), "catch-up"],
            [WorkflowSchedule.interval({ name: " ", workflow: W, every: "1 hour", input }), "empty"],
            [WorkflowSchedule.interval({ name, workflow: Other, every: "1 hour", input }), "not registered"]
          ]
          for (const [schedule, reason] of cases) {
            const error = yield* Effect.flip(startScheduler(W, [schedule]))
            assert.strictEqual(error._tag, "InvalidSchedule")
            assert.include(error.message, reason)
          }
          const twice = WorkflowSchedule.interval({ name, workflow: W, every: "1 hour", input })
          const duplicate = yield* Effect.flip(startScheduler(W, [twice, twice]))
          assert.include(duplicate.message, "declared twice")
          assert.isTrue(Option.isNone(yield* info(name)))
        }))
    }
  )
