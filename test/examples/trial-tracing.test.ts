import { NodeSdk } from "@effect/opentelemetry"
import { assert, layer } from "@effect/vitest"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, TestClock } from "effect"
import { TestRuntime, WorkflowService } from "ironflow"
import { StartTrial, TrialWorkflow } from "../../scratchpad/examples/TrialWorkflow.js"

// In an application: a BatchSpanProcessor with an OTLP exporter (@opentelemetry/exporter-trace-otlp-http).
const exporter = new InMemorySpanExporter()
const Tracing = NodeSdk.layer(() => ({
  resource: { serviceName: "trials" },
  spanProcessor: new SimpleSpanProcessor(exporter)
}))

const charges = TestRuntime.handlerDouble(TrialWorkflow, [TestRuntime.Reply.none()])

layer(TestRuntime.layer({ handlers: [charges.handler] }).pipe(Layer.provide(Tracing)), { timeout: 60_000 })(
  "TrialWorkflow, traced",
  (it) => {
    it.effect("the start, the timer it set and the expiry it fired are one trace", () =>
      Effect.gen(function*() {
        const service = yield* WorkflowService.WorkflowService
        yield* service.execute(TrialWorkflow, new StartTrial({ customerId: "c-1" }))
        yield* TestClock.adjust("24 hours")
        yield* TestRuntime.awaitTerminal(TrialWorkflow, "c-1")
        // The instance's spans (@effect/sql adds one per statement, `sql.execute`).
        const spans = () =>
          exporter.getFinishedSpans().filter((span) => span.attributes["ironflow.workflow_id"] === "c-1")
        yield* TestRuntime.awaitCondition(Effect.sync(() => spans().length === 3))

        const [start, timer, expiry] = spans().map((span) => ({
          name: span.name,
          traceId: span.spanContext().traceId,
          spanId: span.spanContext().spanId,
          parent: span.parentSpanContext?.spanId
        }))
        assert.deepStrictEqual([start.name, timer.name, expiry.name], [
          "ironflow.execute", // StartTrial, by the caller
          "ironflow.timer", // the 24-hour timer firing, in whichever process claimed it
          "ironflow.execute" // ExpireTrial, applied by the timer worker
        ])
        assert.strictEqual(timer.parent, start.spanId)
        assert.strictEqual(expiry.parent, timer.spanId)
        assert.isTrue([timer, expiry].every((span) => span.traceId === start.traceId))
      }))
  }
)
