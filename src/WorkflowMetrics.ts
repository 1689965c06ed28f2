/**
 * Metrics of the runtime, recorded with Effect's `Metric` (export them with
 * `@effect/opentelemetry` or read them with `Metric.value`). Counters carry
 * the tags `kind` (effect or timer) and `workflow_type`.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"

const taggedCache = new WeakMap<object, Map<string, unknown>>()
const keys = new WeakMap<object, MetricKey.MetricKey<any>>()

const register = <M extends Metric.Metric<any, any, any>>(key: MetricKey.MetricKey<any>, metric: M): M => {
  keys.set(metric, key)
  return metric
}

const latencyBoundaries = MetricBoundaries.exponential({ start: 0.5, factor: 2, count: 20 })

const counter = (name: string, description: string) => {
  const key = MetricKey.counter(name, { description, incremental: true })
  return register(key, Metric.fromMetricKey(key))
}
const gauge = (name: string, description: string) => {
  const key = MetricKey.gauge(name, { description })
  return register(key, Metric.fromMetricKey(key))
}
const histogram = (name: string, description: string) => {
  const key = MetricKey.histogram(name, latencyBoundaries, description)
  return register(key, Metric.fromMetricKey(key))
}

/**
 * @since 0.1.0
 * @category metrics
 */
export const processed = counter(
  "ironflow_processed_total",
  "Effects and timers handled successfully (tags: kind, workflow_type)"
)

/**
 * @since 0.1.0
 * @category metrics
 */
export const failed = counter(
  "ironflow_failed_attempts_total",
  "Failed attempts of effects and timers, retried later (tags: kind, workflow_type)"
)

/**
 * Attempts interrupted because they ran past their handler's timeout (also
 * counted in `failed` or `deadLettered`, as the attempt they were).
 *
 * @since 0.1.0
 * @category metrics
 */
export const timedOut = counter(
  "ironflow_timed_out_attempts_total",
  "Effect attempts that ran past their handler's timeout (tags: kind, workflow_type)"
)

/**
 * @since 0.1.0
 * @category metrics
 */
export const deadLettered = counter(
  "ironflow_dead_lettered_total",
  "Effects and timers that became dead letters (tags: kind, workflow_type)"
)

/**
 * @since 0.1.0
 * @category metrics
 */
export const handlerDuration = histogram(
  "ironflow_handler_duration_ms",
  "Time spent in an effect handler or a timer's execute, including routing its result (ms)"
)

/**
 * @since 0.1.0
 * @category metrics
 */
export const pickupLatency = histogram(
  "ironflow_pickup_latency_ms",
  "From an effect's creation (a timer's fire time) to its claim (ms)"
)

/**
 * @since 0.1.0
 * @category metrics
 */
export const pending = gauge("ironflow_pending", "Effects and timers waiting to run (tags: kind, workflow_type)")

/**
 * @since 0.1.0
 * @category metrics
 */
export const expiredLeases = gauge(
  "ironflow_expired_leases",
  "Claimed rows whose lease expired without an ack (tags: kind, workflow_type)"
)

/**
 * @since 0.1.0
 * @category metrics
 */
export const longRunning = gauge(
  "ironflow_long_running",
  "Claimed rows held for more than a minute: attempts that run long or hang (tags: kind, workflow_type)"
)

/**
 * @since 0.1.0
 * @category metrics
 */
export const deadLetters = gauge("ironflow_dead_letters", "Dead letters (tags: kind, workflow_type)")

/**
 * @since 0.1.0
 * @category metrics
 */
export const clockOffset = gauge(
  "ironflow_clock_offset_ms",
  "How far this runtime's clock is from the database's, in milliseconds (positive: ahead)"
)

/**
 * @since 0.1.0
 * @category metrics
 */
export const claimsPaused = gauge(
  "ironflow_claims_paused",
  "1 while this runtime claims nothing because its clock disagrees with the database's, else 0"
)

/**
 * @since 0.1.0
 * @category metrics
 */
export const executes = counter("ironflow_executes_total", "Inputs executed (tags: workflow_type, outcome)")

/**
 * `metric` tagged with `tags`, built once per distinct tag values, as a
 * metric whose key carries the tags: `Metric.tagged` rebuilds and hashes its
 * key on every update, too costly to repeat for every effect. Reads with
 * `Metric.tagged(metric, ...)` (same tags, same order) see the same values.
 *
 * @since 0.1.0
 * @category utils
 */
export const tagged = <M extends Metric.Metric<any, any, any>>(
  metric: M,
  tags: Readonly<Record<string, string>>
): M => {
  let byTags = taggedCache.get(metric)
  if (byTags === undefined) {
    byTags = new Map()
    taggedCache.set(metric, byTags)
  }
  const id = Object.entries(tags).map(([k, v]) => `${k}\u0000${v}`).join("\u0001")
  let result = byTags.get(id) as M | undefined
  if (result === undefined) {
    const labels = Object.entries(tags).map(([k, v]) => MetricLabel.make(k, v))
    const key = keys.get(metric)
    result = key === undefined
      ? labels.reduce((m, label) => Metric.taggedWithLabels(m, [label]) as M, metric)
      : Metric.fromMetricKey(MetricKey.taggedWithLabels(key, labels)) as unknown as M
    byTags.set(id, result)
  }
  return result
}
