/**
 * A workflow type: Schemas for its state, inputs, events, effects and
 * rejections, and the pure functions `decide` and `evolve`.
 *
 * @since 0.1.0
 */
import type * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import { createHash } from "node:crypto"
import type * as Decision from "./Decision.js"
import type { EffectContext } from "./EffectContext.js"
import * as JsonCodec from "./internal/jsonCodec.js"
import type { RetryPolicy } from "./RetryPolicy.js"
import { WorkflowDefinitionError } from "./WorkflowError.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("ironflow/Workflow")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * @since 0.1.0
 * @category models
 */
export interface Workflow<State, Input, Event, Eff = never, Rejection = never> extends Pipeable {
  readonly [TypeId]: TypeId
  /** Stable name of the workflow type; the first half of every instance's key. Never change it. */
  readonly type: string
  readonly state: Schema.Schema<State, any>
  readonly input: Schema.Schema<Input, any>
  readonly event: Schema.Schema<Event, any>
  readonly effect: Schema.Schema<Eff, any>
  readonly rejection: Schema.Schema<Rejection, any>
  readonly initialState: State
  /** The instance an input belongs to. All inputs of one instance must return the same id. */
  readonly workflowId: (input: Input) => string
  /** Pure and deterministic: the state after one event. */
  readonly evolve: (state: State, event: Event) => State
  /** Pure: what to do with an input. `now` is the `Clock` time of the execution. */
  readonly decide: (now: DateTime.Utc, state: State, input: Input) => Decision.Decision<Event, Eff, Input, Rejection>
  /** Whether the state (after the new events) ends the instance. */
  readonly isTerminal: (state: State) => boolean
  /**
   * A key that at most one active instance of this type may hold (recorded
   * when the instance is created, released when it completes).
   */
  readonly uniqueKey: (input: Input) => string | undefined
  /**
   * Fingerprint of the state Schema. A snapshot written under another
   * fingerprint is ignored and the state rebuilt from the events.
   */
  readonly stateVersion: string
  /** The version new events are written with (default 1). */
  readonly eventVersion: number
  /** Upcasters by the version they read: `upcasters[n]` turns the stored JSON of version n into version n + 1. */
  readonly upcasters: Readonly<Record<number, Schema.Schema<any, any>>>
  /**
   * Turns a dead-lettered effect or timer of an instance into an input for
   * its workflow (so it can compensate or end instead of waiting forever);
   * `undefined` leaves a plain dead letter.
   */
  readonly onDeadLetter: ((notice: DeadLetterNotice<Eff, Input>) => Input | undefined) | undefined
  /**
   * The input that cancels an instance from outside (`WorkflowService.cancel`,
   * `ironflow instances cancel`), built from the reason and the instance's id;
   * `decide` chooses what cancelling means. `undefined`: the workflow cannot be
   * cancelled from outside.
   */
  readonly cancel: ((reason: string, workflowId: string) => Input) | undefined
  /**
   * The handler of this workflow's effects. What it returns is routed back to
   * the workflow as an input (`Option.none()`: nothing to route). A failure or
   * defect is a failed attempt, retried on the retry policy; the handler may
   * run more than once per effect (at-least-once), so make it idempotent, for
   * example with `ctx.idempotencyKey`.
   */
  readonly handler: <E, R>(
    handle: (effect: Eff, context: EffectContext) => Effect.Effect<Option.Option<Input>, E, R>,
    options?: HandlerOptions<Eff>
  ) => WorkflowHandler<Workflow<State, Input, Event, Eff, Rejection>, R>
}

/**
 * Any workflow, whatever its types (including those whose effect or
 * rejection Schema is `Schema.Never`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Any extends Pipeable {
  readonly [TypeId]: TypeId
  readonly type: string
  readonly state: Schema.Schema.All
  readonly input: Schema.Schema.All
  readonly event: Schema.Schema.All
  readonly effect: Schema.Schema.All
  readonly rejection: Schema.Schema.All
  readonly initialState: any
  readonly workflowId: (input: any) => string
  readonly evolve: (state: any, event: any) => any
  readonly decide: (now: DateTime.Utc, state: any, input: any) => Decision.Decision<any, any, any, any>
  readonly isTerminal: (state: any) => boolean
  readonly uniqueKey: (input: any) => string | undefined
  readonly stateVersion: string
  readonly eventVersion: number
  readonly upcasters: Readonly<Record<number, Schema.Schema<any, any>>>
  readonly onDeadLetter: ((notice: any) => any) | undefined
  readonly cancel: ((reason: string, workflowId: string) => any) | undefined
  readonly handler: (handle: any, options?: HandlerOptions) => WorkflowHandler<any, any>
}

/**
 * What \`onDeadLetter\` receives: the dead effect (or the timer's input), why it
 * died, and after how many attempts.
 *
 * @since 0.1.0
 * @category models
 */
export type DeadLetterNotice<Eff, Input> =
  | {
    readonly kind: "effect"
    readonly id: string
    readonly workflowId: string
    /** The effect, when its payload still decodes. */
    readonly effect: Option.Option<Eff>
    readonly error: string
    readonly attempts: number
  }
  | {
    readonly kind: "timer"
    readonly id: string
    readonly workflowId: string
    /** The timer's input, when it still decodes. */
    readonly input: Option.Option<Input>
    readonly error: string
    readonly attempts: number
  }

/**
 * @since 0.1.0
 * @category type-level
 */
export type State<W extends Any> = Schema.Schema.Type<W["state"]>
/**
 * @since 0.1.0
 * @category type-level
 */
export type Input<W extends Any> = Schema.Schema.Type<W["input"]>
/**
 * @since 0.1.0
 * @category type-level
 */
export type Event<W extends Any> = Schema.Schema.Type<W["event"]>
/**
 * @since 0.1.0
 * @category type-level
 */
export type EffectOf<W extends Any> = Schema.Schema.Type<W["effect"]>
/**
 * @since 0.1.0
 * @category type-level
 */
export type Rejection<W extends Any> = Schema.Schema.Type<W["rejection"]>

/**
 * @since 0.1.0
 * @category models
 */
export interface HandlerOptions<Eff = any> {
  /** Overrides the runtime's retry policy for this workflow's effects and timers. */
  readonly retryPolicy?: RetryPolicy | undefined
  /**
   * Longest run of one attempt of the handler (`Clock` time); overrides the
   * runtime's `handlerTimeout`. An attempt that runs past it is interrupted
   * and counted as a failed attempt ("timed out after 30 s"), retried on the
   * retry policy and dead-lettered when the attempts run out.
   */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * The priority of this workflow's effects when their decision gives none
   * (`Decision.withEffect(effect, { priority })`): among ready effects, higher
   * is claimed first. Default 0.
   */
  readonly priority?: number | ((effect: Eff) => number) | undefined
  /**
   * At most `limit` effects with the same key run at once, across every
   * runtime on the database (a SIGKILLed runtime's slots come back when its
   * leases expire). Effects over the limit wait without being rescanned.
   */
  readonly concurrency?: ConcurrencyLimit<Eff> | undefined
  /**
   * At most `limit` effects with the same key start per `per` (a sliding
   * window on the `Clock`), across every runtime on the database.
   */
  readonly rateLimit?: RateLimit<Eff> | undefined
}

/**
 * A concurrency limit per key (`HandlerOptions.concurrency`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ConcurrencyLimit<Eff> {
  readonly key: (effect: Eff) => string
  readonly limit: number
}

/**
 * A rate limit per key (`HandlerOptions.rateLimit`).
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimit<Eff> {
  readonly key: (effect: Eff) => string
  readonly limit: number
  readonly per: Duration.DurationInput
}

/**
 * @since 0.1.0
 * @category type ids
 */
export const HandlerTypeId: unique symbol = Symbol.for("ironflow/Workflow/Handler")

/**
 * A workflow together with the handler of its effects; register it with
 * `WorkflowRegistry.layer([...])`. `R` is what the handler needs, supplied by
 * the application's Layers.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkflowHandler<W extends Any, R = never> {
  readonly [HandlerTypeId]: typeof HandlerTypeId
  readonly workflow: W
  readonly handle: (effect: EffectOf<W>, context: EffectContext) => Effect.Effect<Option.Option<Input<W>>, unknown, R>
  readonly retryPolicy: Option.Option<RetryPolicy>
  /** The handler's own timeout per attempt (`HandlerOptions.timeout`), if any. */
  readonly timeout: Option.Option<Duration.Duration>
  /** True for the no-op handler of workflows without effects. */
  readonly withoutEffects: boolean
  /** `HandlerOptions.priority`, `concurrency` and `rateLimit`, if given. */
  readonly priority?: number | ((effect: EffectOf<W>) => number) | undefined
  readonly concurrency?: ConcurrencyLimit<EffectOf<W>> | undefined
  readonly rateLimit?: RateLimit<EffectOf<W>> | undefined
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isWorkflow = (u: unknown): u is Any => typeof u === "object" && u !== null && TypeId in u

/**
 * @since 0.1.0
 * @category guards
 */
export const isHandler = (u: unknown): u is WorkflowHandler<Any, unknown> =>
  typeof u === "object" && u !== null && HandlerTypeId in u

/**
 * Where an input's workflow id is: a field present on every variant of the
 * input union, with per-variant overrides (ironflow's `#[workflow_id(field)]`
 * derive).
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkflowIdField {
  readonly field?: string | undefined
  readonly overrides?: Readonly<Record<string, string>> | undefined
}

const isStringLike = (ast: AST.AST): boolean => {
  switch (ast._tag) {
    case "StringKeyword":
    case "TemplateLiteral":
      return true
    case "Literal":
      return typeof ast.literal === "string"
    case "Refinement":
      return isStringLike(ast.from)
    case "Transformation":
      return isStringLike(ast.from)
    case "Union":
      return ast.types.every(isStringLike)
    default:
      return false
  }
}

/**
 * Builds a workflow id function from a field name, checked against the input
 * Schema when the workflow is defined: the input must be a tagged union (or a
 * single tagged struct), every variant needs the field (or an override) and
 * the field must be a string. Any mistake throws `WorkflowDefinitionError`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const idFrom = <I>(
  workflowType: string,
  input: Schema.Schema<I, any>,
  spec: WorkflowIdField
): (input: I) => string => {
  const fail = (detail: string): never => {
    throw new WorkflowDefinitionError({ workflowType, detail })
  }
  const variants = JsonCodec.taggedVariants(input)
  if (variants === undefined) {
    return fail(
      "a workflow id field needs an input Schema that is a tagged union (Schema.Union of Schema.TaggedClass or Schema.TaggedStruct); use a function instead"
    )
  }
  const tags = variants.map((v) => v.tag)
  for (const tag of Object.keys(spec.overrides ?? {})) {
    if (!tags.includes(tag)) {
      fail(`workflow id override names an unknown input variant '${tag}' (variants: ${tags.join(", ")})`)
    }
  }
  const fieldByTag = new Map<string, string>()
  for (const variant of variants) {
    const field = spec.overrides?.[variant.tag] ?? spec.field
    if (field === undefined) {
      fail(`input variant '${variant.tag}' has no workflow id field and no default field is set`)
    }
    const property = variant.properties.find((p) => p.name === field)
    if (property === undefined) {
      const available = variant.properties.map((p) => String(p.name)).filter((name) => name !== "_tag")
      fail(
        `input variant '${variant.tag}' has no field '${field}' (available fields: ${
          available.length === 0 ? "none" : available.join(", ")
        })`
      )
    }
    if (!isStringLike(property!.type)) {
      fail(`workflow id field '${field}' of input variant '${variant.tag}' is not a string`)
    }
    fieldByTag.set(variant.tag, field!)
  }
  return (value: I) => String((value as Record<string, unknown>)[fieldByTag.get((value as { _tag: string })._tag)!])
}

/**
 * @since 0.1.0
 * @category models
 */
export interface MakeOptions<State, Input, Event, Eff, Rejection> {
  readonly type: string
  readonly state: Schema.Schema<State, any>
  readonly input: Schema.Schema<Input, any>
  readonly event: Schema.Schema<Event, any>
  /** Defaults to `Schema.Never`: a workflow without effects. */
  readonly effect?: Schema.Schema<Eff, any> | undefined
  /** Defaults to `Schema.Never`: a workflow that cannot reject. */
  readonly rejection?: Schema.Schema<Rejection, any> | undefined
  readonly initialState: NoInfer<State>
  /** A function of the input, or the field that holds the id on every input variant. */
  readonly workflowId: ((input: NoInfer<Input>) => string) | WorkflowIdField
  readonly evolve: (state: NoInfer<State>, event: NoInfer<Event>) => NoInfer<State>
  readonly decide: (
    now: DateTime.Utc,
    state: NoInfer<State>,
    input: NoInfer<Input>
  ) => Decision.Decision<NoInfer<Event>, NoInfer<Eff>, NoInfer<Input>, NoInfer<Rejection>>
  readonly isTerminal?: ((state: NoInfer<State>) => boolean) | undefined
  readonly uniqueKey?: ((input: NoInfer<Input>) => string | undefined) | undefined
  /** Overrides the state Schema fingerprint used to validate snapshots. */
  readonly stateVersion?: string | undefined
  /** The version new events are written with (default 1); raise it when the event Schema changes shape. */
  readonly eventVersion?: number | undefined
  /**
   * `upcasters[n]` reads the stored JSON of event version n and returns the
   * JSON of version n + 1 (a Schema whose encoded side is the old shape and
   * whose type side is the new stored shape; see \`upcastVariant\`).
   */
  readonly upcasters?: Readonly<Record<number, Schema.Schema<any, any>>> | undefined
  /** Dead-letter propagation: turn a dead effect or timer into an input (see `Workflow.onDeadLetter`). */
  readonly onDeadLetter?:
    | ((notice: DeadLetterNotice<NoInfer<Eff>, NoInfer<Input>>) => NoInfer<Input> | undefined)
    | undefined
  /**
   * The cancellation input: what `WorkflowService.cancel(workflow, id, reason)`
   * executes on the instance (see `Workflow.cancel`). It must belong to that
   * instance (`workflowId` of it is `id`).
   */
  readonly cancel?: ((reason: string, workflowId: string) => NoInfer<Input>) | undefined
}

/**
 * An upcaster for one variant of a stored event union: applies \`schema\` (old
 * stored JSON → new stored JSON, both in the \`{"type": ...}\` shape) to events
 * whose \`type\` is \`variant\`, and passes the others through unchanged.
 *
 * @since 0.1.0
 * @category constructors
 */
export const upcastVariant = (variant: string, schema: Schema.Schema<any, any>): Schema.Schema<unknown, unknown> => {
  const decode = Schema.decodeUnknownEither(schema)
  return Schema.transformOrFail(Schema.Unknown, Schema.Unknown, {
    strict: true,
    decode: (json, _options, ast) => {
      if (typeof json !== "object" || json === null || (json as { type?: unknown }).type !== variant) {
        return ParseResult.succeed(json)
      }
      return Either.match(decode(json), {
        onLeft: (error) => ParseResult.fail(new ParseResult.Type(ast, json, error.message)),
        onRight: ParseResult.succeed
      })
    },
    encode: (json, _options, ast) => ParseResult.fail(new ParseResult.Forbidden(ast, json, "upcasters only read"))
  })
}

const checkStoredShape = (workflowType: string, subject: string, schema: Schema.Schema.AnyNoContext) => {
  const shape = JsonCodec.tagShape(schema)
  if (typeof shape === "object") {
    throw new WorkflowDefinitionError({
      workflowType,
      detail:
        `${subject} variant '${shape.collision}' has a field named 'type', which the stored form uses for the variant name`
    })
  }
}

const fingerprint = (schema: Schema.Schema.AnyNoContext): string =>
  createHash("sha256").update(JSON.stringify(AST.encodedAST(schema.ast))).update(String(schema.ast)).digest("hex")
    .slice(0, 16)

const WorkflowProto = {
  [TypeId]: TypeId,
  pipe() {
    // eslint-disable-next-line prefer-rest-params
    return pipeArguments(this, arguments)
  },
  toJSON(this: Any) {
    return { _id: "Workflow", type: this.type }
  }
}

/**
 * Defines a workflow type. Misconfiguration (a workflow id field missing on an
 * input variant, an empty type name, a variant field named `type`) throws
 * `WorkflowDefinitionError` here, when the workflow is defined.
 *
 * @example
 * ```ts
 * // A counter that can be closed
 * import { Schema } from "effect"
 * import { Decision, Workflow } from "ironflow"
 *
 * class Add extends Schema.TaggedClass<Add>()("Add", { counterId: Schema.String, amount: Schema.Number }) {}
 * class Close extends Schema.TaggedClass<Close>()("Close", { counterId: Schema.String }) {}
 * class Added extends Schema.TaggedClass<Added>()("Added", { amount: Schema.Number }) {}
 * class Closed extends Schema.TaggedClass<Closed>()("Closed", {}) {}
 *
 * export const Counter = Workflow.make({
 *   type: "counter",
 *   state: Schema.Struct({ total: Schema.Number, closed: Schema.Boolean }),
 *   input: Schema.Union(Add, Close),
 *   event: Schema.Union(Added, Closed),
 *   rejection: Schema.String,
 *   initialState: { total: 0, closed: false },
 *   workflowId: { field: "counterId" },
 *   evolve: (state, event) =>
 *     event._tag === "Added" ? { ...state, total: state.total + event.amount } : { ...state, closed: true },
 *   decide: (_now, _state, input) =>
 *     input._tag === "Close"
 *       ? Decision.accept(new Closed())
 *       : input.amount > 0
 *       ? Decision.accept(new Added({ amount: input.amount }))
 *       : Decision.reject("amount must be positive"),
 *   isTerminal: (state) => state.closed
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <State, Input, Event, Eff = never, Rejection = never>(
  options: MakeOptions<State, Input, Event, Eff, Rejection>
): Workflow<State, Input, Event, Eff, Rejection> => {
  if (options.type.length === 0) {
    throw new WorkflowDefinitionError({ workflowType: options.type, detail: "the workflow type must not be empty" })
  }
  const effect = (options.effect ?? Schema.Never) as Schema.Schema<Eff, any>
  const rejection = (options.rejection ?? Schema.Never) as Schema.Schema<Rejection, any>
  checkStoredShape(options.type, "input", options.input)
  checkStoredShape(options.type, "event", options.event)
  checkStoredShape(options.type, "effect", effect)
  const eventVersion = options.eventVersion ?? 1
  if (!Number.isInteger(eventVersion) || eventVersion < 1) {
    throw new WorkflowDefinitionError({ workflowType: options.type, detail: "eventVersion must be an integer ≥ 1" })
  }
  for (const from of Object.keys(options.upcasters ?? {})) {
    const n = Number(from)
    if (!Number.isInteger(n) || n < 1 || n >= eventVersion) {
      throw new WorkflowDefinitionError({
        workflowType: options.type,
        detail: `upcaster from version ${from} is out of range: upcasters read versions 1 to ${eventVersion - 1}`
      })
    }
  }
  const workflowId = typeof options.workflowId === "function"
    ? options.workflowId
    : idFrom(options.type, options.input, options.workflowId)
  const self: Workflow<State, Input, Event, Eff, Rejection> = Object.assign(Object.create(WorkflowProto), {
    type: options.type,
    state: options.state,
    input: options.input,
    event: options.event,
    effect,
    rejection,
    initialState: options.initialState,
    workflowId,
    evolve: options.evolve,
    decide: options.decide,
    isTerminal: options.isTerminal ?? (() => false),
    uniqueKey: options.uniqueKey ?? (() => undefined),
    stateVersion: options.stateVersion ?? fingerprint(options.state),
    eventVersion,
    upcasters: options.upcasters ?? {},
    onDeadLetter: options.onDeadLetter,
    cancel: options.cancel,
    handler: <E, R>(
      handle: (effect: Eff, context: EffectContext) => Effect.Effect<Option.Option<Input>, E, R>,
      handlerOptions?: HandlerOptions<Eff>
    ): WorkflowHandler<Workflow<State, Input, Event, Eff, Rejection>, R> => ({
      [HandlerTypeId]: HandlerTypeId,
      workflow: self,
      handle,
      retryPolicy: Option.fromNullable(handlerOptions?.retryPolicy),
      timeout: Option.map(Option.fromNullable(handlerOptions?.timeout), Duration.decode),
      withoutEffects: false,
      priority: handlerOptions?.priority,
      concurrency: checkLimit("concurrency", handlerOptions?.concurrency),
      rateLimit: checkLimit("rateLimit", handlerOptions?.rateLimit)
    })
  })
  return self
}

// A limit below 1 could never run anything: refused where it is declared.
const checkLimit = <L extends { readonly limit: number } | undefined>(name: string, limit: L): L => {
  if (limit !== undefined && !(Number.isInteger(limit.limit) && limit.limit >= 1)) {
    throw new globalThis.Error(`${name}.limit must be an integer of at least 1, got ${limit.limit}`)
  }
  return limit
}

/**
 * Registers a workflow that emits no effects (its effect Schema is
 * `Schema.Never`). Its handler only logs a warning if an effect ever reaches
 * it, and routes nothing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const withoutEffects = <State, Input, Event, Rejection>(
  workflow: Workflow<State, Input, Event, never, Rejection>,
  options?: HandlerOptions
): WorkflowHandler<Workflow<State, Input, Event, never, Rejection>> => ({
  [HandlerTypeId]: HandlerTypeId,
  workflow,
  handle: () =>
    Effect.logWarning("NoopHandler received an effect; workflow should not emit effects").pipe(
      Effect.annotateLogs({ workflowType: workflow.type }),
      Effect.as(Option.none())
    ),
  retryPolicy: Option.fromNullable(options?.retryPolicy),
  timeout: Option.map(Option.fromNullable(options?.timeout), Duration.decode),
  withoutEffects: true
})

/**
 * Something `WorkflowRegistry.layer` accepts: a handler, or a workflow without
 * effects.
 *
 * @since 0.1.0
 * @category models
 */
export type Registration<R = never> = WorkflowHandler<Any, R> | WithoutEffects

/**
 * Any workflow whose effect Schema is `Schema.Never`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WithoutEffects extends Any {
  readonly effect: Schema.Schema<never, any>
}

/**
 * @since 0.1.0
 * @category conversions
 */
export const toHandler = <R>(registration: Registration<R>): WorkflowHandler<Any, R> =>
  isHandler(registration)
    ? registration as WorkflowHandler<Any, R>
    : withoutEffects(registration as Workflow<any, any, any, never, any>) as unknown as WorkflowHandler<Any, R>
