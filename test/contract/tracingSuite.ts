/**
 * OpenTelemetry end to end (issue #13 item 4): with @effect/opentelemetry
 * installed, the spans of one workflow form one trace, carried across
 * processes and restarts by the trace context stored on outbox and timer
 * rows. Spans are recorded by the SDK's in-memory exporter; each runtime gets
 * a tracer provider of its own, as a separate process would.
 *
 * Time is the TestClock (see runtimeSuite.ts); the workers look at the
 * database on real time.
 */
import * as OtelTracer from "@effect/opentelemetry/Tracer"
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor
} from "@opentelemetry/sdk-trace-base"
import { Deferred, Effect, Layer, Option, Ref, Schema, TestClock, type Tracer } from "effect"
import {
  Decision,
  PgWorkflowStore,
  Projection,
  Timer,
  Workflow,
  WorkflowRegistry,
  WorkflowSchedule,
  WorkflowStore
} from "ironflow"
import { assertBackend } from "../support/database.js"
import {
  awaitCondition,
  awaitEventTypes,
  live,
  serviceFor,
  startRuntime,
  uniqueType
} from "../support/runtimeHarness.js"

// =============================================================================
// The workflow: Go enqueues Work and sets a Tick timer; Work's handler routes Worked back.
// =============================================================================

class Go extends Schema.TaggedClass<Go>("Traced/Go")("Go", { id: Schema.String }) {}
class Worked extends Schema.TaggedClass<Worked>("Traced/Worked")("Worked", { id: Schema.String }) {}
class Tick extends Schema.TaggedClass<Tick>("Traced/Tick")("Tick", { id: Schema.String }) {}
class Went extends Schema.TaggedClass<Went>("Traced/Went")("Went", {}) {}
class DidWork extends Schema.TaggedClass<DidWork>("Traced/DidWork")("DidWork", {}) {}
class Ticked extends Schema.TaggedClass<Ticked>("Traced/Ticked")("Ticked", {}) {}
class Work extends Schema.TaggedClass<Work>("Traced/Work")("Work", { id: Schema.String }) {}

const makeTraced = (type: string) =>
  Workflow.make({
    type,
    state: Schema.Struct({}),
    input: Schema.Union(Go, Worked, Tick),
    event: Schema.Union(Went, DidWork, Ticked),
    effect: Work,
    initialState: {},
    workflowId: { field: "id" },
    evolve: (s) => s,
    decide: (_now, _s, input) => {
      switch (input._tag) {
        case "Go":
          return Decision.accept(new Went()).pipe(
            Decision.withEffect(new Work({ id: input.id })),
            Decision.withTimer(Timer.withKey(Timer.after("1 minute", new Tick({ id: input.id })), "tick"))
          )
        case "Worked":
          return Decision.accept(new DidWork())
        case "Tick":
          return Decision.accept(new Ticked())
      }
    }
  })

type Traced = ReturnType<typeof makeTraced>

/** Routes `Worked` back; with a gate, counts its start in `started` and waits for the gate to open. */
const handlerOf = (
  workflow: Traced,
  gate?: { readonly open: Deferred.Deferred<void>; readonly started: Ref.Ref<number> }
) =>
  workflow.handler((effect) =>
    Effect.as(
      gate === undefined
        ? Effect.void
        : Effect.zipRight(Ref.update(gate.started, (n) => n + 1), Deferred.await(gate.open)),
      Option.some(new Worked({ id: effect.id }))
    )
  )

// =============================================================================
// Tracing: one in-memory exporter per tracer provider (a "process")
// =============================================================================

interface Recorder {
  readonly tracer: Tracer.Tracer
  readonly spans: () => ReadonlyArray<ReadableSpan>
}

const makeRecorder = Effect.gen(function*() {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const tracer = yield* OtelTracer.make.pipe(
    Effect.provideService(OtelTracer.OtelTracer, provider.getTracer("ironflow-test"))
  )
  yield* Effect.addFinalizer(() => Effect.promise(() => provider.shutdown()))
  return { tracer, spans: () => exporter.getFinishedSpans() } satisfies Recorder
})

const traceId = (span: ReadableSpan) => span.spanContext().traceId
const spanId = (span: ReadableSpan) => span.spanContext().spanId
const parentId = (span: ReadableSpan) => span.parentSpanContext?.spanId

/** The finished spans named `name` of one instance (by their `ironflow.workflow_id` attribute). */
const spansOf = (spans: ReadonlyArray<ReadableSpan>, name: string, workflowId: string) =>
  spans.filter((s) => s.name === name && s.attributes["ironflow.workflow_id"] === workflowId)

/** The one finished span of this name and instance whose attribute `key` is `value` (or any, without a key). */
const theSpan = (
  spans: ReadonlyArray<ReadableSpan>,
  name: string,
  workflowId: string,
  key?: string,
  value?: unknown
): ReadableSpan => {
  const found = spansOf(spans, name, workflowId).filter((s) => key === undefined || s.attributes[key] === value)
  assert.strictEqual(found.length, 1, `one ${name} span of ${workflowId}${key === undefined ? "" : ` with ${key}`}`)
  return found[0]
}

/** The execute span of the caller's `execute` of an instance (not one applying a handler's result or a timer's input). */
const callerExecute = (spans: ReadonlyArray<ReadableSpan>, workflowId: string): ReadableSpan => {
  const found = spansOf(spans, "ironflow.execute", workflowId).filter((s) =>
    s.attributes["ironflow.effect_id"] === undefined && s.attributes["ironflow.timer_id"] === undefined
  )
  assert.strictEqual(found.length, 1, `one execute of ${workflowId} by its caller`)
  return found[0]
}

const awaitSpans = (label: string, recorder: Recorder, done: (spans: ReadonlyArray<ReadableSpan>) => boolean) =>
  awaitCondition(label, Effect.sync(() => done(recorder.spans())))

/** The polled statements of an idle runtime, by store member. */
const polled = [
  "claim",
  "nextTimerDue",
  "announceWorker",
  "queueStats",
  "databaseTimeMillis",
  "prune",
  "projectionTick"
] as const

/** The suite's store, counting the calls of the members in `polled`. */
const countingStore = Effect.gen(function*() {
  const store = yield* WorkflowStore.WorkflowStore
  const calls: Record<(typeof polled)[number], number> = {
    claim: 0,
    nextTimerDue: 0,
    announceWorker: 0,
    queueStats: 0,
    databaseTimeMillis: 0,
    prune: 0,
    projectionTick: 0
  }
  const count = (member: (typeof polled)[number]) =>
    Effect.sync(() => {
      calls[member]++
    })
  const counted: WorkflowStore.WorkflowStore["Type"] = {
    ...store,
    claim: (options) => Effect.zipRight(count("claim"), store.claim(options)),
    nextTimerDue: (types) => Effect.zipRight(count("nextTimerDue"), store.nextTimerDue(types)),
    announceWorker: (info, ttl) => Effect.zipRight(count("announceWorker"), store.announceWorker(info, ttl)),
    queueStats: Effect.zipRight(count("queueStats"), store.queueStats),
    databaseTimeMillis: Effect.zipRight(count("databaseTimeMillis"), store.databaseTimeMillis),
    prune: (options) => Effect.zipRight(count("prune"), store.prune(options)),
    projectionTick: (name, types, limit, body) =>
      Effect.zipRight(count("projectionTick"), store.projectionTick(name, types, limit, body))
  }
  return { store: counted, calls: () => ({ ...calls }) }
})

/** The stored trace context of each row of a type, oldest first. */
const traceColumns = (table: "outbox" | "timers", workflowType: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = table === "outbox"
      ? yield* sql<{ traceparent: string | null; tracestate: string | null }>`
          SELECT traceparent, tracestate FROM ironflow.outbox WHERE workflow_type = ${workflowType}
          ORDER BY created_at, id`
      : yield* sql<{ traceparent: string | null; tracestate: string | null }>`
          SELECT traceparent, tracestate FROM ironflow.timers WHERE workflow_type = ${workflowType}
          ORDER BY created_at, id`
    return rows.map((row) => ({ traceparent: row.traceparent, tracestate: row.tracestate }))
  })

const traceparentOf = (span: ReadableSpan) => `00-${traceId(span)}-${spanId(span)}-01`

export const suite = (label: string, database: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  it.layer(PgWorkflowStore.layer.pipe(Layer.provideMerge(database)), { timeout: "120 seconds" })(
    `Tracing (${label})`,
    (it) => {
      it.effect(`runs on ${label}: the database says so, and another connection sees the writes`, () =>
        assertBackend(label))

      it.scoped(
        "one trace: execute → its effect's handler → the execute applying the result; the timer it set → its firing → its execute",
        () =>
          Effect.gen(function*() {
            const recorder = yield* makeRecorder
            const type = uniqueType("trace_one")
            const W = makeTraced(type)
            yield* Effect.gen(function*() {
              const rt = yield* startRuntime([handlerOf(W)])
              yield* rt.service.execute(W, new Go({ id: "t-1" }))
              yield* awaitEventTypes(type, "t-1", ["Went", "DidWork"])
              // Stored: the context of the execute span that wrote the rows.
              yield* awaitSpans("the first executes", recorder, (spans) =>
                spansOf(spans, "ironflow.execute", "t-1").length === 2)
              yield* TestClock.adjust("1 minute")
              yield* awaitEventTypes(type, "t-1", ["Went", "DidWork", "Ticked"])
            }).pipe(Effect.withTracer(recorder.tracer))
            yield* awaitSpans("the timer's execute", recorder, (spans) =>
              spansOf(spans, "ironflow.execute", "t-1").length === 3)

            const spans = recorder.spans()
            const go = callerExecute(spans, "t-1")
            const first = spansOf(spans, "ironflow.execute", "t-1").filter((s) =>
              parentId(s) === undefined
            )
            assert.deepStrictEqual(first.map(spanId), [spanId(go)], "the caller's execute is the root")
            const effect = theSpan(spans, "ironflow.effect", "t-1")
            const applied = theSpan(
              spans,
              "ironflow.execute",
              "t-1",
              "ironflow.effect_id",
              effect.attributes["ironflow.effect_id"]
            )
            const timer = theSpan(spans, "ironflow.timer", "t-1")
            const fired = theSpan(
              spans,
              "ironflow.execute",
              "t-1",
              "ironflow.timer_id",
              timer.attributes["ironflow.timer_id"]
            )

            const trace = traceId(go)
            for (const span of [effect, applied, timer, fired]) {
              assert.strictEqual(traceId(span), trace, span.name)
            }
            assert.strictEqual(parentId(effect), spanId(go), "the handler runs under the execute that enqueued it")
            assert.strictEqual(parentId(applied), spanId(effect), "the result is applied under the handler")
            assert.strictEqual(parentId(timer), spanId(go), "the timer fires under the execute that set it")
            assert.strictEqual(parentId(fired), spanId(timer), "its input is applied under the firing")
            assert.strictEqual(applied.attributes["ironflow.outcome"], "Accepted")
            assert.strictEqual(fired.attributes["ironflow.outcome"], "Accepted")

            assert.deepStrictEqual(yield* traceColumns("outbox", type), [{
              traceparent: traceparentOf(go),
              tracestate: null
            }])
            assert.deepStrictEqual(yield* traceColumns("timers", type), [{
              traceparent: traceparentOf(go),
              tracestate: null
            }])
          })
      )

      it.scoped(
        "across a restart with another tracer provider, the chain goes on in the same trace",
        () =>
          Effect.gen(function*() {
            const before = yield* makeRecorder
            const after = yield* makeRecorder
            const type = uniqueType("trace_restart")
            const W = makeTraced(type)
            // The first process: executes, runs the handler, applies its result, and stops before the timer is due.
            yield* Effect.gen(function*() {
              const rt = yield* startRuntime([handlerOf(W)])
              yield* rt.service.execute(W, new Go({ id: "r-1" }))
              yield* awaitEventTypes(type, "r-1", ["Went", "DidWork"])
              yield* rt.shutdown
            }).pipe(Effect.withTracer(before.tracer))
            // An execute without workers (an API process): its effect runs in the second process.
            yield* Effect.gen(function*() {
              const service = yield* serviceFor([handlerOf(W)])
              yield* service.execute(W, new Go({ id: "r-2" }))
            }).pipe(Effect.withTracer(before.tracer))
            yield* awaitSpans("the first process's spans", before, (spans) =>
              spansOf(spans, "ironflow.execute", "r-1").length === 2 &&
              spansOf(spans, "ironflow.execute", "r-2").length === 1)

            // The second process.
            yield* Effect.gen(function*() {
              yield* startRuntime([handlerOf(W)])
              yield* awaitEventTypes(type, "r-2", ["Went", "DidWork"])
              yield* TestClock.adjust("1 minute")
              yield* awaitEventTypes(type, "r-1", ["Went", "DidWork", "Ticked"])
              yield* awaitEventTypes(type, "r-2", ["Went", "DidWork", "Ticked"])
            }).pipe(Effect.withTracer(after.tracer))
            yield* awaitSpans("the second process's spans", after, (spans) =>
              spansOf(spans, "ironflow.execute", "r-1").length === 1 &&
              spansOf(spans, "ironflow.execute", "r-2").length === 2)

            const first = before.spans()
            const second = after.spans()
            assert.deepStrictEqual(spansOf(first, "ironflow.timer", "r-1"), [], "r-1's timer did not fire before")
            assert.deepStrictEqual(spansOf(first, "ironflow.effect", "r-2"), [], "r-2's effect did not run before")

            const go1 = callerExecute(first, "r-1")
            const timer1 = theSpan(second, "ironflow.timer", "r-1")
            const fired1 = theSpan(second, "ironflow.execute", "r-1")
            assert.strictEqual(traceId(timer1), traceId(go1))
            assert.strictEqual(
              parentId(timer1),
              spanId(go1),
              "the firing's parent is the execute of the stopped process"
            )
            assert.strictEqual(traceId(fired1), traceId(go1))
            assert.strictEqual(parentId(fired1), spanId(timer1))

            const go2 = callerExecute(first, "r-2")
            const effect2 = theSpan(second, "ironflow.effect", "r-2")
            const timer2 = theSpan(second, "ironflow.timer", "r-2")
            assert.strictEqual(parentId(effect2), spanId(go2))
            assert.strictEqual(parentId(timer2), spanId(go2))
            for (const span of spansOf(second, "ironflow.execute", "r-2")) {
              assert.strictEqual(traceId(span), traceId(go2))
              assert.include([spanId(effect2), spanId(timer2)], parentId(span))
            }
            assert.notStrictEqual(traceId(go1), traceId(go2), "each workflow has its own trace")
          })
      )

      it.scoped("a group commit applies many instances in one transaction; each execute span is in its own trace", () =>
        Effect.gen(function*() {
          const recorder = yield* makeRecorder
          const type = uniqueType("trace_group")
          const W = makeTraced(type)
          const gate = { open: yield* Deferred.make<void>(), started: yield* Ref.make(0) }
          const ids = Array.from({ length: 8 }, (_, i) => `g-${i}`)
          yield* Effect.gen(function*() {
            // Every handler waits for the gate, so their results reach the committer together.
            const rt = yield* startRuntime([handlerOf(W, gate)])
            yield* Effect.forEach(ids, (id) => rt.service.execute(W, new Go({ id })), { concurrency: "unbounded" })
            yield* awaitCondition("every handler started", Effect.map(Ref.get(gate.started), (n) => n === ids.length))
            yield* Deferred.succeed(gate.open, undefined)
            yield* Effect.forEach(ids, (id) => awaitEventTypes(type, id, ["Went", "DidWork"]), { discard: true })
          }).pipe(Effect.withTracer(recorder.tracer))
          yield* awaitSpans(
            "every applying execute",
            recorder,
            (spans) => ids.every((id) => spansOf(spans, "ironflow.execute", id).length === 2)
          )

          const spans = recorder.spans()
          const applying = ids.map((id) => theSpan(spans, "ironflow.execute", id, "ironflow.outcome", "Accepted"))
          assert.isTrue(
            applying.some((s) => Number(s.attributes["ironflow.group_size"]) > 1),
            "some results were applied in one group transaction"
          )
          for (const id of ids) {
            const traces = new Set(
              spans.filter((s) => s.attributes["ironflow.workflow_id"] === id).map(traceId)
            )
            assert.strictEqual(traces.size, 1, `${id}: one trace`)
            const effect = theSpan(spans, "ironflow.effect", id)
            assert.strictEqual(parentId(applying[ids.indexOf(id)]), spanId(effect))
          }
          assert.strictEqual(new Set(applying.map(traceId)).size, ids.length, "one trace per workflow")
        }))

      it.scoped("a malformed stored traceparent is ignored: the handler and the timer run in new root spans", () =>
        Effect.gen(function*() {
          const recorder = yield* makeRecorder
          const type = uniqueType("trace_malformed")
          const W = makeTraced(type)
          const sql = yield* SqlClient.SqlClient
          // Written without a tracer, then damaged: each row a different way.
          const service = yield* serviceFor([handlerOf(W)])
          const malformed = [
            "garbage",
            "00-00000000000000000000000000000000-0000000000000000-01", // all-zero ids are invalid
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", // version ff is forbidden
            "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01", // upper case is not W3C
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra" // version 00 ends at the flags
          ]
          for (const [i, value] of malformed.entries()) {
            yield* service.execute(W, new Go({ id: `m-${i}` }))
            yield* sql`UPDATE ironflow.outbox SET traceparent = ${value}, tracestate = ${"=,==bad"}
              WHERE workflow_type = ${type} AND workflow_id = ${`m-${i}`}`
            yield* sql`UPDATE ironflow.timers SET traceparent = ${value}
              WHERE workflow_type = ${type} AND workflow_id = ${`m-${i}`}`
          }
          yield* Effect.gen(function*() {
            // Started inside a span of the application's: the workers' spans must not become its children.
            yield* startRuntime([handlerOf(W)]).pipe(Effect.withSpan("the process's span"))
            for (const i of malformed.keys()) yield* awaitEventTypes(type, `m-${i}`, ["Went", "DidWork"])
            yield* TestClock.adjust("1 minute")
            for (const i of malformed.keys()) yield* awaitEventTypes(type, `m-${i}`, ["Went", "DidWork", "Ticked"])
          }).pipe(Effect.withTracer(recorder.tracer))
          yield* awaitSpans(
            "every execute",
            recorder,
            (spans) => malformed.every((_, i) => spansOf(spans, "ironflow.execute", `m-${i}`).length === 2)
          )

          const spans = recorder.spans()
          for (const i of malformed.keys()) {
            const effect = theSpan(spans, "ironflow.effect", `m-${i}`)
            const timer = theSpan(spans, "ironflow.timer", `m-${i}`)
            assert.isUndefined(effect.parentSpanContext, `m-${i}: the handler's span is a root`)
            assert.isUndefined(timer.parentSpanContext, `m-${i}: the timer's span is a root`)
            assert.notStrictEqual(traceId(effect), traceId(timer), "two new traces")
            for (const execute of spansOf(spans, "ironflow.execute", `m-${i}`)) {
              assert.include([spanId(effect), spanId(timer)], parentId(execute), "the chain goes on from the new root")
            }
          }
        }))

      it.scoped("a stored tracestate reaches the spans of the chain", () =>
        Effect.gen(function*() {
          const recorder = yield* makeRecorder
          const type = uniqueType("trace_state")
          const W = makeTraced(type)
          const sql = yield* SqlClient.SqlClient
          const service = yield* serviceFor([handlerOf(W)])
          yield* service.execute(W, new Go({ id: "s-1" }))
          const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
          yield* sql`UPDATE ironflow.outbox SET traceparent = ${traceparent}, tracestate = ${"vendor=abc,other=x y"}
            WHERE workflow_type = ${type}`
          yield* Effect.gen(function*() {
            yield* startRuntime([handlerOf(W)])
            yield* awaitEventTypes(type, "s-1", ["Went", "DidWork"])
          }).pipe(Effect.withTracer(recorder.tracer))
          yield* awaitSpans("the applying execute", recorder, (spans) =>
            spansOf(spans, "ironflow.execute", "s-1").length === 1)
          const effect = theSpan(recorder.spans(), "ironflow.effect", "s-1")
          assert.strictEqual(traceId(effect), "0af7651916cd43dd8448eb211c80319c")
          assert.strictEqual(parentId(effect), "b7ad6b7169203331")
          assert.strictEqual(effect.spanContext().traceState?.serialize(), "vendor=abc,other=x y")
        }))

      it.scoped("without a tracer, nothing is captured: the trace columns stay NULL", () =>
        Effect.gen(function*() {
          const type = uniqueType("trace_none")
          const W = makeTraced(type)
          const rt = yield* startRuntime([handlerOf(W)])
          // Spans of Effect's own tracer are not OpenTelemetry's: the application installed no tracer.
          yield* rt.service.execute(W, new Go({ id: "n-1" })).pipe(Effect.withSpan("the caller's span"))
          yield* awaitEventTypes(type, "n-1", ["Went", "DidWork"])
          assert.deepStrictEqual(yield* traceColumns("outbox", type), [{ traceparent: null, tracestate: null }])
          assert.deepStrictEqual(yield* traceColumns("timers", type), [{ traceparent: null, tracestate: null }])
        }))

      describe("with a tracer installed", () => {
        it.scoped(
          "an idle runtime's polling records no spans: claims, timer polls, heartbeats, announcements, gauges, clock checks, retention, projections, schedules",
          () =>
            Effect.gen(function*() {
              const recorder = yield* makeRecorder
              const W = makeTraced(uniqueType("trace_idle"))
              const counting = yield* countingStore
              const [atStart, idleFrom, before, after] = yield* live(
                Effect.gen(function*() {
                  // Every loop at a short interval, the clock check on (the live clock is the database's).
                  yield* startRuntime([handlerOf(W)], {
                    leaseHeartbeatInterval: "50 millis",
                    queueMetricsInterval: "50 millis",
                    maxClockSkew: "5 seconds",
                    clockCheckInterval: "50 millis",
                    retention: { olderThan: "1 day", interval: "50 millis" }
                  }, counting.store)
                  const atStart = recorder.spans().length
                  // A projection runner and a scheduler (with nothing due), polling as often.
                  yield* Layer.build(
                    Layer.mergeAll(
                      Projection.layer([
                        Projection.make({ name: uniqueType("idle"), workflows: [W], handle: () => Effect.void })
                      ], {
                        pollInterval: "50 millis"
                      }),
                      WorkflowSchedule.layer([
                        WorkflowSchedule.interval({
                          name: uniqueType("idle"),
                          workflow: W,
                          every: "1 hour",
                          input: () => new Go({ id: "never" })
                        })
                      ], { pollInterval: "50 millis" })
                    ).pipe(
                      Layer.provide(WorkflowRegistry.layer([handlerOf(W)])),
                      Layer.provide(Layer.succeed(WorkflowStore.WorkflowStore, counting.store))
                    )
                  )
                  const idleFrom = recorder.spans().length
                  const before = counting.calls()
                  yield* Effect.sleep("1 second")
                  return [atStart, idleFrom, before, counting.calls()] as const
                  // Inside `live`: its services would replace the tracer.
                }).pipe(Effect.withTracer(recorder.tracer))
              )
              for (const member of polled) {
                assert.isAbove(after[member], before[member], `${member} was polled during the second`)
              }
              // Named with their statement's start, so a loop that still records spans is found from the diff.
              const names = recorder.spans().map((span) =>
                [span.name, String(span.attributes["db.query.text"] ?? "").replace(/\s+/g, " ").trim().slice(0, 48)]
                  .join(" ").trim()
              )
              assert.deepStrictEqual(names.slice(idleFrom), [], "no span recorded while idle")
              assert.deepStrictEqual(names.slice(0, atStart), [], "nor while the runtime started")
            })
        )

        it.scoped("a projection tick's statements are untraced; the spans of its handler are recorded", () =>
          Effect.gen(function*() {
            const recorder = yield* makeRecorder
            const W = makeTraced(uniqueType("trace_projection"))
            const service = yield* serviceFor([handlerOf(W)])
            yield* service.execute(W, new Go({ id: "p-1" }))
            const projection = Projection.make({
              name: uniqueType("traced"),
              workflows: [W],
              handle: (event) =>
                Effect.withSpan(Effect.void, "the handler's span", { attributes: { id: event.workflowId } })
            })
            const result = yield* Projection.tick(projection).pipe(Effect.withTracer(recorder.tracer))
            assert.strictEqual(Option.getOrThrow(result).applied, 1)
            assert.deepStrictEqual(
              recorder.spans().map((span) => [span.name, span.attributes.id]),
              [["the handler's span", "p-1"]]
            )
          }))

        it.scoped("a keyed timer re-armed by a later decision takes that decision's trace", () =>
          Effect.gen(function*() {
            const recorder = yield* makeRecorder
            const type = uniqueType("trace_rearm")
            const W = makeTraced(type)
            const service = yield* serviceFor([handlerOf(W)])
            const executes: Array<ReadableSpan> = []
            for (const _ of [1, 2]) {
              // Two executes in traces of their own: Go twice re-arms the keyed timer.
              yield* service.execute(W, new Go({ id: "k-1" })).pipe(Effect.withTracer(recorder.tracer))
              executes.push(recorder.spans().at(-1)!)
            }
            assert.notStrictEqual(traceId(executes[0]), traceId(executes[1]))
            assert.deepStrictEqual(yield* traceColumns("timers", type), [{
              traceparent: traceparentOf(executes[1]),
              tracestate: null
            }])
            assert.deepStrictEqual(
              (yield* traceColumns("outbox", type)).map((r) => r.traceparent),
              executes.map(traceparentOf)
            )
          }))
      })
    }
  )
