import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries, Option, Schema } from "effect"
import { Decision, TestRuntime, Workflow, WorkflowMetrics, WorkflowService } from "ironflow"

class Go extends Schema.TaggedClass<Go>()("Go", { id: Schema.String, fail: Schema.Boolean }) {}
class Went extends Schema.TaggedClass<Went>()("Went", {}) {}
class Work extends Schema.TaggedClass<Work>()("Work", { fail: Schema.Boolean }) {}

const Metered = Workflow.make({
  type: "metered",
  state: Schema.Struct({}),
  input: Go,
  event: Went,
  effect: Work,
  initialState: {},
  workflowId: { field: "id" },
  evolve: (s) => s,
  decide: (_now, _s, input) => Decision.accept(new Went()).pipe(Decision.withEffect(new Work({ fail: input.fail })))
})

const handler = Metered.handler((work) => (work.fail ? Effect.fail("no") : Effect.succeed(Option.none())))

const value = <T>(metric: Metric.Metric<any, any, T>, tags: Record<string, string>) =>
  Metric.value(Object.entries(tags).reduce((m, [k, v]) => Metric.tagged(m, k, v), metric))

describe("WorkflowMetrics", () => {
  it.layer(TestRuntime.layer({ handlers: [handler], config: { queueMetricsInterval: "50 millis" } }), {
    timeout: 60_000
  })((it) => {
    it.effect("counts executes, processed effects, failed attempts, dead letters and queue depths", () =>
      Effect.gen(function*() {
        const service = yield* WorkflowService.WorkflowService
        yield* service.execute(Metered, new Go({ id: "ok", fail: false }))
        yield* service.execute(Metered, new Go({ id: "bad", fail: true }))
        yield* TestRuntime.awaitDeadLetters({ workflowType: "metered" }, { advanceClock: "100 millis" })
        const tags = { kind: "effect", workflow_type: "metered" }
        assert.strictEqual((yield* value(WorkflowMetrics.processed, tags)).count, 1)
        assert.strictEqual((yield* value(WorkflowMetrics.failed, tags)).count, 2)
        assert.strictEqual((yield* value(WorkflowMetrics.deadLettered, tags)).count, 1)
        const accepted = yield* value(WorkflowMetrics.executes, { workflow_type: "metered", outcome: "Accepted" })
        assert.strictEqual(accepted.count, 2)
        yield* TestRuntime.awaitCondition(
          Effect.map(value(WorkflowMetrics.deadLetters, tags), (gauge) => gauge.value === 1),
          { description: "the dead-letter gauge" }
        )
        const pickups = yield* Metric.value(Metric.tagged(WorkflowMetrics.pickupLatency, "kind", "effect"))
        assert.isAtLeast(pickups.count, 2)
      }))
  })
})

describe("WorkflowMetrics.formatPrometheus", () => {
  it.effect("counters, gauges and histograms in the text format, labels escaped", () =>
    Effect.gen(function*() {
      const requests = Metric.counter("test_prom_requests_total", { description: "Requests\nserved" }).pipe(
        Metric.tagged("path", `a"b\\c`)
      )
      const depth = Metric.gauge("test.prom-depth")
      const latency = Metric.histogram(
        "test_prom_latency_ms",
        MetricBoundaries.fromIterable([1, 10]),
        "Latency"
      )
      yield* Metric.increment(requests)
      yield* Metric.increment(requests)
      yield* Metric.set(depth, 7)
      yield* Metric.update(latency, 0.5)
      yield* Metric.update(latency, 5)
      yield* Metric.update(latency, 50)
      const pairs = (yield* Metric.snapshot).filter((p) => p.metricKey.name.startsWith("test"))
      const text = WorkflowMetrics.formatPrometheus(pairs)
      assert.strictEqual(
        text,
        [
          "# TYPE test_prom_depth gauge",
          "test_prom_depth 7",
          "# HELP test_prom_latency_ms Latency",
          "# TYPE test_prom_latency_ms histogram",
          `test_prom_latency_ms_bucket{le="1"} 1`,
          `test_prom_latency_ms_bucket{le="10"} 2`,
          `test_prom_latency_ms_bucket{le="+Inf"} 3`,
          "test_prom_latency_ms_sum 55.5",
          "test_prom_latency_ms_count 3",
          "# HELP test_prom_requests_total Requests\\nserved",
          "# TYPE test_prom_requests_total counter",
          `test_prom_requests_total{path="a\\"b\\\\c"} 2`,
          ""
        ].join("\n")
      )
    }))
})
