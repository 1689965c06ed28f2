import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Schema, TestClock, Tracer } from "effect"
import { Decision, TestRuntime, Workflow, WorkflowService } from "ironflow"

class Go extends Schema.TaggedClass<Go>()("Go", { id: Schema.String }) {}
class Tick extends Schema.TaggedClass<Tick>()("Tick", { id: Schema.String }) {}
class Went extends Schema.TaggedClass<Went>()("Went", {}) {}
class Work extends Schema.TaggedClass<Work>()("Work", {}) {}

const Traced = Workflow.make({
  type: "traced",
  state: Schema.Struct({}),
  input: Schema.Union(Go, Tick),
  event: Went,
  effect: Work,
  initialState: {},
  workflowId: { field: "id" },
  evolve: (s) => s,
  decide: (_now, _s, input) =>
    input._tag === "Go"
      ? Decision.accept(new Went()).pipe(
        Decision.withEffect(new Work()),
        Decision.withTimerAfter("1 minute", new Tick({ id: input.id }))
      )
      : Decision.accept(new Went())
})

const recorded: Array<{ name: string; attributes: Record<string, unknown> }> = []
const recording = Tracer.make({
  span: (name, parent, context, links, startTime, kind) => {
    const attributes: Record<string, unknown> = {}
    recorded.push({ name, attributes })
    return {
      _tag: "Span",
      name,
      spanId: `${recorded.length}`,
      traceId: "trace",
      parent,
      context,
      status: { _tag: "Started", startTime },
      attributes: new Map(),
      links,
      sampled: true,
      kind,
      end: () => {},
      attribute: (key: string, value: unknown) => {
        attributes[key] = value
      },
      event: () => {},
      addLinks: () => {}
    } satisfies Tracer.Span
  },
  context: (f) => f()
})

const handler = Traced.handler(() => Effect.succeed(Option.none()))

describe("tracing", () => {
  it.layer(
    TestRuntime.layer({ handlers: [handler] }).pipe(Layer.provide(Layer.setTracer(recording))),
    { timeout: 60_000 }
  )((it) => {
    it.effect("with a tracer installed, every execute, effect and timer has a span with its attributes", () =>
      Effect.gen(function*() {
        const service = yield* WorkflowService.WorkflowService
        yield* service.execute(Traced, new Go({ id: "t-1" }))
        yield* TestRuntime.awaitEffectsProcessed(Traced, "t-1")
        yield* TestClock.adjust("1 minute")
        yield* TestRuntime.awaitCondition(Effect.sync(() => recorded.some((s) => s.name === "ironflow.timer")))
        const execute = recorded.find((s) => s.name === "ironflow.execute")
        const effect = recorded.find((s) => s.name === "ironflow.effect")
        const timer = recorded.find((s) => s.name === "ironflow.timer")
        assert.strictEqual(execute?.attributes["ironflow.workflow_type"], "traced")
        assert.strictEqual(effect?.attributes["ironflow.workflow_id"], "t-1")
        assert.strictEqual(effect?.attributes["ironflow.attempt"], 1)
        assert.strictEqual(timer?.attributes["ironflow.workflow_type"], "traced")
      }).pipe(Effect.withTracer(recording)))
  })
})
