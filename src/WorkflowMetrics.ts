/**
 * Metrics of the runtime, recorded with Effect's `Metric` (export them with
 * `@effect/opentelemetry` or read them with `Metric.value`). Counters carry
 * the tags `kind` (effect or timer) and `workflow_type`.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

const latencyBoundaries = MetricBoundaries.exponential({ start: 0.5, factor: 2, count: 20 })

/**
 * @since 0.1.0
 * @category metrics
 */
export const processed = Metric.counter("ironflow_processed_total", {
  description: "Effects and timers handled successfully (tags: kind, workflow_type)",
  incremental: true
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const failed = Metric.counter("ironflow_failed_attempts_total", {
  description: "Failed attempts of effects and timers, retried later (tags: kind, workflow_type)",
  incremental: true
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const deadLettered = Metric.counter("ironflow_dead_lettered_total", {
  description: "Effects and timers that became dead letters (tags: kind, workflow_type)",
  incremental: true
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const handlerDuration = Metric.histogram(
  "ironflow_handler_duration_ms",
  latencyBoundaries,
  "Time spent in an effect handler or a timer's execute, including routing its result (ms)"
)

/**
 * @since 0.1.0
 * @category metrics
 */
export const pickupLatency = Metric.histogram(
  "ironflow_pickup_latency_ms",
  latencyBoundaries,
  "From an effect's creation (a timer's fire time) to its claim (ms)"
)

/**
 * @since 0.1.0
 * @category metrics
 */
export const pending = Metric.gauge("ironflow_pending", {
  description: "Effects and timers waiting to run (tags: kind, workflow_type)"
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const expiredLeases = Metric.gauge("ironflow_expired_leases", {
  description: "Claimed rows whose lease expired without an ack (tags: kind, workflow_type)"
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const deadLetters = Metric.gauge("ironflow_dead_letters", {
  description: "Dead letters (tags: kind, workflow_type)"
})

/**
 * @since 0.1.0
 * @category metrics
 */
export const executes = Metric.counter("ironflow_executes_total", {
  description: "Inputs executed (tags: workflow_type, outcome)",
  incremental: true
})
