/**
 * W3C trace context (https://www.w3.org/TR/trace-context/) of queue rows:
 * written from the span of the execute that wrote a row, read back as the
 * parent of the span that runs it. Plain strings and Effect's `Tracer` only:
 * the library never imports OpenTelemetry, whose integration
 * (`@effect/opentelemetry`) the application installs.
 */
import * as Context from "effect/Context"
import * as Tracer from "effect/Tracer"
import type * as WorkflowStore from "../WorkflowStore.js"

// The context keys under which @effect/opentelemetry reads an external parent's trace flags and trace state
// (its `OtelTraceFlags` / `OtelTraceState` tags): set on the parent we restore, an unsampled trace stays
// unsampled and the vendor entries reach the child, without importing that package.
const TraceFlags = Context.GenericTag<number>("@effect/opentelemetry/Tracer/OtelTraceFlags")
const TraceState = Context.GenericTag<TraceStateEntries>("@effect/opentelemetry/Tracer/OtelTraceState")

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/
const INVALID_TRACE_ID = "0".repeat(32)
const INVALID_SPAN_ID = "0".repeat(16)
/** One `key=value` member of a tracestate (the spec's key and value grammar). */
const MEMBER =
  /^([a-z0-9][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])$/
const MAX_TRACESTATE = 512
const MAX_MEMBERS = 32

/**
 * A tracestate's entries, in the shape of OpenTelemetry's `TraceState`
 * (`get`, `set`, `unset`, `serialize`), which is what @effect/opentelemetry
 * hands to the SDK for an external parent.
 */
class TraceStateEntries {
  constructor(private readonly entries: ReadonlyArray<readonly [string, string]>) {}
  get(key: string): string | undefined {
    return this.entries.find(([k]) => k === key)?.[1]
  }
  set(key: string, value: string): TraceStateEntries {
    return new TraceStateEntries([[key, value], ...this.entries.filter(([k]) => k !== key)])
  }
  unset(key: string): TraceStateEntries {
    return new TraceStateEntries(this.entries.filter(([k]) => k !== key))
  }
  serialize(): string {
    return this.entries.map(([k, v]) => `${k}=${v}`).join(",")
  }
}

/** The well-formed members of a stored tracestate (malformed ones are dropped, as the spec asks). */
const parseTraceState = (text: string): TraceStateEntries | undefined => {
  if (text.length > MAX_TRACESTATE) return undefined
  const entries: Array<readonly [string, string]> = []
  for (const part of text.split(",")) {
    const member = MEMBER.exec(part.trim())
    if (member === null || entries.some(([k]) => k === member[1])) continue
    entries.push([member[1], member[2]])
    if (entries.length === MAX_MEMBERS) break
  }
  return entries.length === 0 ? undefined : new TraceStateEntries(entries)
}

/** The tracestate of a span, when its tracer keeps one (an OpenTelemetry span, or a parent restored here). */
const traceStateOf = (span: Tracer.AnySpan): string | undefined => {
  const otel = (span as { readonly span?: { readonly spanContext?: unknown } }).span
  const state = typeof otel?.spanContext === "function"
    ? (otel.spanContext() as { readonly traceState?: { readonly serialize?: unknown } } | undefined)?.traceState
    : Context.getOrElse(span.context, TraceState, () => undefined)
  if (typeof state?.serialize !== "function") return undefined
  const text = state.serialize()
  return typeof text === "string" && text.length > 0 && text.length <= MAX_TRACESTATE ? text : undefined
}

/**
 * The trace context of a span, or `undefined` when its ids are not W3C ids
 * (a tracer of the application's own that is not OpenTelemetry).
 *
 * @internal
 */
export const fromSpan = (span: Tracer.AnySpan): WorkflowStore.TraceContext | undefined => {
  const { spanId, traceId } = span
  if (
    traceId.length !== 32 || spanId.length !== 16 || traceId === INVALID_TRACE_ID || spanId === INVALID_SPAN_ID ||
    !TRACEPARENT.test(`00-${traceId}-${spanId}-00`)
  ) {
    return undefined
  }
  const traceparent = `00-${traceId}-${spanId}-${span.sampled ? "01" : "00"}`
  const tracestate = traceStateOf(span)
  return tracestate === undefined ? { traceparent } : { traceparent, tracestate }
}

/**
 * The parent a stored trace context names, or `undefined` when it is absent
 * or malformed: then the span that runs the row starts a new trace (a bad
 * value is never a failure).
 *
 * @internal
 */
export const toParent = (stored: WorkflowStore.TraceContext | undefined): Tracer.ExternalSpan | undefined => {
  if (stored === undefined) return undefined
  const parsed = TRACEPARENT.exec(stored.traceparent)
  if (parsed === null) return undefined
  const [, version, traceId, spanId, flags, rest] = parsed
  // Version ff is forbidden; version 00 has nothing after the flags (later versions may append fields).
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined
  if (traceId === INVALID_TRACE_ID || spanId === INVALID_SPAN_ID) return undefined
  const traceFlags = parseInt(flags, 16)
  let context = Context.make(TraceFlags, traceFlags)
  const state = stored.tracestate === undefined ? undefined : parseTraceState(stored.tracestate)
  if (state !== undefined) context = Context.add(context, TraceState, state)
  return Tracer.externalSpan({ traceId, spanId, sampled: (traceFlags & 1) === 1, context })
}
