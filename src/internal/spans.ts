import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"

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

/**
 * The span the current fiber runs in, only when the application installed a
 * tracer (with the default one, no trace context is ever written).
 *
 * @internal
 */
export const current: Effect.Effect<Tracer.AnySpan | undefined> = Effect.flatMap(
  Effect.tracer,
  (tracer) =>
    tracer === defaultTracer
      ? Effect.succeed(undefined)
      : Effect.map(Effect.serviceOption(Tracer.ParentSpan), Option.getOrUndefined)
)

/**
 * Starts a span that `end` ends, for work that is not one Effect of its own
 * (an input applied in a group transaction among others); `undefined`
 * without a tracer.
 *
 * @internal
 */
export const start = (name: string, options: Tracer.SpanOptions): Effect.Effect<Tracer.Span | undefined> =>
  Effect.flatMap(
    Effect.tracer,
    (tracer) =>
      tracer === defaultTracer
        ? Effect.succeed(undefined)
        : Effect.makeSpan(name, { ...options, captureStackTrace: false })
  )

/** Ends a span from `start` with the outcome of its work. @internal */
export const end = (span: Tracer.Span | undefined, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> =>
  span === undefined ? Effect.void : Effect.map(Clock.currentTimeNanos, (now) => span.end(now, exit))
