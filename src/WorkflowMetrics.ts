/**
 * Metrics of the runtime, recorded with Effect's `Metric` (export them with
 * `@effect/opentelemetry` or read them with `Metric.value`). Counters carry
 * the tags `kind` (effect or timer) and `workflow_type`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"
import type * as MetricPair from "effect/MetricPair"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import type { QueueStats } from "./WorkflowStore.js"

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

/**
 * Sets the queue gauges (pending, expired leases, long-running, dead
 * letters) from one reading of `WorkflowStore.queueStats`.
 *
 * @since 0.1.0
 * @category utils
 */
export const recordQueueStats = (stats: ReadonlyArray<QueueStats>): Effect.Effect<void> =>
  Effect.forEach(stats, (row) => {
    const tags = { kind: row.kind, workflow_type: row.workflowType }
    return Effect.all([
      Metric.set(tagged(pending, tags), row.pending),
      Metric.set(tagged(expiredLeases, tags), row.expiredLeases),
      Metric.set(tagged(longRunning, tags), row.longRunning),
      Metric.set(tagged(deadLetters, tags), row.deadLetters)
    ], { discard: true })
  }, { discard: true })

const metricName = (name: string) => name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/^([0-9])/, "_$1")
const labelName = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, "_").replace(/^([0-9])/, "_$1")
const labelValue = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")
const helpText = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
const sampleValue = (value: number | bigint) =>
  typeof value === "bigint"
    ? value.toString()
    : Number.isNaN(value)
    ? "NaN"
    : value === Infinity
    ? "+Inf"
    : value === -Infinity
    ? "-Inf"
    : String(value)
const labels = (pairs: ReadonlyArray<readonly [string, string]>) =>
  pairs.length === 0 ? "" : `{${pairs.map(([k, v]) => `${labelName(k)}="${labelValue(v)}"`).join(",")}}`

/**
 * Metrics in the Prometheus text exposition format (version 0.0.4): every
 * metric of this process (`Metric.snapshot`), counters and gauges as such,
 * histograms with cumulative `_bucket` lines, `_sum` and `_count`,
 * frequencies as one counter per occurrence, summaries with quantiles.
 * Names and labels outside Prometheus' alphabet are replaced by `_`.
 *
 * @since 0.1.0
 * @category exporters
 */
export const prometheus: Effect.Effect<string> = Effect.map(Metric.snapshot, (pairs) => formatPrometheus(pairs))

/**
 * The Prometheus text of a metrics snapshot (see `prometheus`).
 *
 * @since 0.1.0
 * @category exporters
 */
export const formatPrometheus = (pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>): string => {
  const families = new Map<string, { type: string; help: string | undefined; lines: Array<string> }>()
  const family = (name: string, type: string, help: Option.Option<string>) => {
    let entry = families.get(name)
    if (entry === undefined) {
      entry = { type, help: Option.getOrUndefined(help), lines: [] }
      families.set(name, entry)
    }
    return entry.lines
  }
  for (const pair of pairs) {
    const key = pair.metricKey
    const name = metricName(key.name)
    const tags = key.tags.map((tag) => [tag.key, tag.value] as const)
    const state = pair.metricState
    if (MetricState.isCounterState(state)) {
      family(name, "counter", key.description).push(`${name}${labels(tags)} ${sampleValue(state.count)}`)
    } else if (MetricState.isGaugeState(state)) {
      family(name, "gauge", key.description).push(`${name}${labels(tags)} ${sampleValue(state.value)}`)
    } else if (MetricState.isHistogramState(state)) {
      const lines = family(name, "histogram", key.description)
      for (const [boundary, count] of state.buckets) {
        lines.push(`${name}_bucket${labels([...tags, ["le", sampleValue(boundary)]])} ${count}`)
      }
      if (!state.buckets.some(([boundary]) => boundary === Infinity)) {
        lines.push(`${name}_bucket${labels([...tags, ["le", "+Inf"]])} ${state.count}`)
      }
      lines.push(`${name}_sum${labels(tags)} ${sampleValue(state.sum)}`)
      lines.push(`${name}_count${labels(tags)} ${state.count}`)
    } else if (MetricState.isFrequencyState(state)) {
      const lines = family(name, "counter", key.description)
      for (const [occurrence, count] of state.occurrences) {
        lines.push(`${name}${labels([...tags, ["key", occurrence]])} ${count}`)
      }
    } else if (MetricState.isSummaryState(state)) {
      const lines = family(name, "summary", key.description)
      for (const [quantile, value] of state.quantiles) {
        if (Option.isSome(value)) {
          lines.push(`${name}${labels([...tags, ["quantile", String(quantile)]])} ${sampleValue(value.value)}`)
        }
      }
      lines.push(`${name}_sum${labels(tags)} ${sampleValue(state.sum)}`)
      lines.push(`${name}_count${labels(tags)} ${state.count}`)
    }
  }
  const out: Array<string> = []
  for (const [name, entry] of [...families.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
    if (entry.help !== undefined) out.push(`# HELP ${name} ${helpText(entry.help)}`)
    out.push(`# TYPE ${name} ${entry.type}`)
    out.push(...entry.lines)
  }
  return out.length === 0 ? "" : out.join("\n") + "\n"
}
