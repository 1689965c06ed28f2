/**
 * The workflow types this process knows, with the handlers of their effects.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { CurrentEffectContext, type EffectContext } from "./EffectContext.js"
import { codecsOf } from "./internal/codecs.js"
import type { RetryPolicy } from "./RetryPolicy.js"
import * as Workflow from "./Workflow.js"
import { DuplicateWorkflowType, SerializationError } from "./WorkflowError.js"
import type { Admission, EffectTraits } from "./WorkflowStore.js"

/**
 * A registered workflow type.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  readonly workflow: Workflow.Any
  /**
   * Decodes a stored effect payload and runs the handler. Run it with the
   * registry's `context` provided (the services the handlers need; the
   * runtime provides it once to its handler fibers, not per call). Its error
   * channel holds the handler's failure (or a `SerializationError` when the
   * payload does not decode).
   */
  readonly handle: (payload: unknown, context: EffectContext) => Effect.Effect<Option.Option<unknown>, unknown>
  /**
   * True for workflows registered without effects (`Workflow.withoutEffects`,
   * `registerWithoutEffects`): the handler is the no-op one.
   */
  readonly withoutEffects: boolean
  /** @deprecated Use `!withoutEffects` (one name for one idea); goes in the next release. */
  readonly handlesEffects: boolean
  readonly retryPolicy: Option.Option<RetryPolicy>
  /** The handler's own timeout per attempt; the runtime's `handlerTimeout` applies when none. */
  readonly timeout: Option.Option<Duration.Duration>
  /** Whether the handler declares a concurrency or rate limit. */
  readonly limited: boolean
  /** The rate limit's window in milliseconds, if it declares one. */
  readonly ratePerMillis: number | undefined
  /**
   * The priority and limit names of a new effect (the value `decide`
   * returned), given the priority its decision chose, if any. A key function
   * that throws leaves the names to the claim (which fails the attempt).
   */
  readonly traits: (effect: unknown, priority: number | undefined) => EffectTraits
  /** The limits a stored effect runs under; fails when its payload does not decode or a key function throws. */
  readonly admission: (id: string, payload: unknown) => Either.Either<Admission, unknown>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class WorkflowRegistry extends Context.Tag("ironflow/WorkflowRegistry")<WorkflowRegistry, {
  readonly get: (workflowType: string) => Option.Option<Entry>
  /** Registered workflow types, in registration order. */
  readonly types: ReadonlyArray<string>
  /** The services the handlers need, captured when the registry was built. */
  readonly context: Context.Context<never>
}>() {}

/**
 * The services a list of registrations needs.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Requirements<Registrations extends ReadonlyArray<Workflow.Registration<any>>> = Exclude<
  Registrations[number] extends infer X ? X extends Workflow.WorkflowHandler<any, infer R> ? R : never : never,
  CurrentEffectContext
>

const priorityOf = (handler: Workflow.WorkflowHandler<Workflow.Any, unknown>, effect: unknown): number => {
  const priority = handler.priority
  if (priority === undefined) return 0
  if (typeof priority === "number") return priority
  try {
    return priority(effect)
  } catch {
    return 0
  }
}

// Limit names are namespaced by kind and workflow type, so two handlers never share a limit by accident.
const limitsOf = (workflowType: string, handler: Workflow.WorkflowHandler<Workflow.Any, unknown>) => {
  const { concurrency, rateLimit } = handler
  const perMillis = rateLimit === undefined ? 0 : Duration.toMillis(Duration.decode(rateLimit.per))
  const names = (id: string, effect: unknown): Admission => ({
    id,
    concurrency: concurrency === undefined
      ? undefined
      : { name: `concurrency:${workflowType}:${concurrency.key(effect)}`, limit: concurrency.limit },
    rate: rateLimit === undefined
      ? undefined
      : { name: `rate:${workflowType}:${rateLimit.key(effect)}`, limit: rateLimit.limit, perMillis }
  })
  return {
    limited: concurrency !== undefined || rateLimit !== undefined,
    names,
    traits: (effect: unknown, priority: number | undefined): EffectTraits => {
      const chosen = priority ?? priorityOf(handler, effect)
      if (concurrency === undefined && rateLimit === undefined) {
        return { priority: chosen, limitKey: null, rateKey: null }
      }
      try {
        const admission = names("", effect)
        return {
          priority: chosen,
          limitKey: admission.concurrency?.name ?? null,
          rateKey: admission.rate?.name ?? null
        }
      } catch {
        return { priority: chosen, limitKey: null, rateKey: null }
      }
    }
  }
}

/**
 * Builds a registry. Registering a workflow type twice fails with
 * `DuplicateWorkflowType` naming the first duplicate (the later registration is
 * ignored until then, as ironflow's builder does).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <const Registrations extends ReadonlyArray<Workflow.Registration<any>>>(
  registrations: Registrations
): Effect.Effect<WorkflowRegistry["Type"], DuplicateWorkflowType, Requirements<Registrations>> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<Requirements<Registrations>>()
    const entries = new Map<string, Entry>()
    let duplicate: string | undefined
    for (const registration of registrations) {
      const handler = Workflow.toHandler(registration)
      const workflow = handler.workflow
      if (entries.has(workflow.type)) {
        duplicate ??= workflow.type
        continue
      }
      const codecs = codecsOf(workflow)
      // The handler's requirements are the captured `context`.
      const handle = handler.handle as (
        effect: unknown,
        context: EffectContext
      ) => Effect.Effect<Option.Option<unknown>, unknown>
      const limits = limitsOf(workflow.type, handler)
      entries.set(workflow.type, {
        workflow,
        limited: limits.limited,
        ratePerMillis: handler.rateLimit === undefined
          ? undefined
          : Duration.toMillis(Duration.decode(handler.rateLimit.per)),
        traits: limits.traits,
        admission: (id, payload) =>
          Either.flatMap(
            codecs.effect.decode(payload),
            (effect) => Either.try({ try: () => limits.names(id, effect), catch: (cause) => cause })
          ),
        withoutEffects: handler.withoutEffects,
        handlesEffects: !handler.withoutEffects,
        retryPolicy: handler.retryPolicy,
        timeout: handler.timeout ?? Option.none(),
        handle: (payload, effectContext) =>
          codecs.effect.decode(payload).pipe(
            Effect.mapError((detail) =>
              new SerializationError({ workflowType: workflow.type, subject: "effect", direction: "decode", detail })
            ),
            Effect.flatMap((effect) => handle(effect, effectContext)),
            Effect.provideService(CurrentEffectContext, effectContext)
          )
      })
    }
    if (duplicate !== undefined) return yield* new DuplicateWorkflowType({ workflowType: duplicate })
    const types = Array.from(entries.keys())
    return WorkflowRegistry.of({
      get: (workflowType) => Option.fromNullable(entries.get(workflowType)),
      types,
      context: context as Context.Context<never>
    })
  })

/**
 * The registry as a Layer; what the handlers need comes from the Layers it is
 * provided with.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <const Registrations extends ReadonlyArray<Workflow.Registration<any>>>(
  registrations: Registrations
): Layer.Layer<WorkflowRegistry, DuplicateWorkflowType, Requirements<Registrations>> =>
  Layer.effect(WorkflowRegistry, make(registrations))
