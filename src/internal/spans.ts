import * as Effect from "effect/Effect"
import type * as Tracer from "effect/Tracer"

// The tracer every fiber has unless the application installs one (e.g. @effect/opentelemetry).
const defaultTracer = Effect.runSync(Effect.tracer)

/**
 * `Effect.withSpan` when the application installed a tracer; with Effect's
 * default tracer, nothing records the span, and creating it on every effect,
 * timer and execute is a measurable part of the hot path.
 *
 * @internal
 */
export const withSpan = (name: string, options: Tracer.SpanOptions) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.flatMap(
    Effect.tracer,
    (tracer) => tracer === defaultTracer ? self : Effect.withSpan(self, name, { ...options, captureStackTrace: false })
  )
