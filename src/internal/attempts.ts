/**
 * One attempt at a claimed row: an effect's handler (bounded by its timeout)
 * or a timer's stored input decoded, timed and in a span of the trace that
 * wrote the row. `Settlement.decide` says what becomes of the row; a dead
 * letter is then handed to its workflow when the workflow asks for it
 * (`onDeadLetter`), and the outcome is counted. Holds no fiber: the workers
 * run the attempts, so there is nothing to shut down.
 */
import type * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import { EffectContext } from "../EffectContext.js"
import type * as RetryPolicy from "../RetryPolicy.js"
import type * as RuntimeConfig from "../RuntimeConfig.js"
import { HandlerTimeout, SerializationError } from "../WorkflowError.js"
import * as WorkflowId from "../WorkflowId.js"
import * as Metrics from "../WorkflowMetrics.js"
import type * as WorkflowRegistry from "../WorkflowRegistry.js"
import type * as WorkflowService from "../WorkflowService.js"
import type { ClaimedItem } from "../WorkflowStore.js"
import { codecsOf } from "./codecs.js"
import * as Settlement from "./settlement.js"
import * as Spans from "./spans.js"
import * as TraceContext from "./traceContext.js"

/** @internal */
export interface Attempts {
  /** An effect: its handler runs; the input it returns is applied with the row's ack by the committer. */
  readonly processEffect: (item: ClaimedItem) => Effect.Effect<Settlement.Settlement>
  /** A timer: its stored input is decoded here and applied on its instance with the row's ack by the committer. */
  readonly processTimer: (item: ClaimedItem) => Effect.Effect<Settlement.Settlement>
  /** A row whose input could not be applied with its ack: a failed attempt, as a failing handler. */
  readonly applyFailed: (item: ClaimedItem, error: unknown) => Effect.Effect<Settlement.Settlement>
}

/** @internal */
export interface Options {
  readonly registry: WorkflowRegistry.WorkflowRegistry["Type"]
  /** Executes the inputs `onDeadLetter` builds. */
  readonly service: WorkflowService.WorkflowService["Type"]
  readonly config: RuntimeConfig.Resolved
  /** The cause of a row whose limit key could not be computed, if so. */
  readonly takeKeyFailure: (id: string) => Option.Option<unknown>
}

/** The handler's own policy, else its workflow type's in the configuration, else the runtime's. */
const policyFor = (config: RuntimeConfig.Resolved, entry: WorkflowRegistry.Entry): RetryPolicy.RetryPolicy =>
  Option.getOrElse(entry.retryPolicy, () => config.workflowRetryPolicies[entry.workflow.type] ?? config.retryPolicy)

const timed = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const started = yield* Clock.currentTimeMillis
    const exit = yield* Effect.exit(self)
    yield* Metric.update(Metrics.handlerDuration, (yield* Clock.currentTimeMillis) - started)
    return yield* exit
  })

/**
 * The handler's attempt, bounded by its timeout (the handler's own, else the
 * runtime's; `Clock` time). Disconnected: at the timeout the attempt fails
 * at once, even if the handler ignores interruption; such a handler goes on
 * in the background until it ends by itself, and what it returns then is
 * dropped (the row is already settled: its slot and lease are free).
 */
const withTimeout = <A>(
  config: RuntimeConfig.Resolved,
  entry: WorkflowRegistry.Entry,
  attempt: Effect.Effect<A, unknown>
) =>
  Option.match(Option.orElse(entry.timeout, () => config.handlerTimeout), {
    onNone: () => attempt,
    onSome: (limit) =>
      Effect.timeoutFail(Effect.disconnect(attempt), {
        duration: limit,
        onTimeout: () =>
          new HandlerTimeout({ workflowType: entry.workflow.type, timeoutMillis: Duration.toMillis(limit) })
      })
  })

/**
 * A dead row of a workflow with `onDeadLetter` becomes an input for its
 * workflow; once that input is executed, the row is marked handled. If that
 * execute fails, it stays a plain dead letter (never a retry loop).
 */
const handOff = (
  service: WorkflowService.WorkflowService["Type"],
  entry: WorkflowRegistry.Entry,
  item: ClaimedItem,
  failed: Settlement.Failed
): Effect.Effect<Settlement.Failed> => {
  const onDeadLetter = entry.workflow.onDeadLetter
  if (onDeadLetter === undefined || failed.disposition._tag !== "DeadLetter") return Effect.succeed(failed)
  const codecs = codecsOf(entry.workflow)
  const common = { id: item.id, workflowId: item.workflowId, error: failed.error, attempts: item.attempts + 1 }
  return Effect.suspend(() => {
    const input = onDeadLetter(
      item.kind === "effect"
        ? { kind: "effect", ...common, effect: Either.getRight(codecs.effect.decode(item.payload)) }
        : { kind: "timer", ...common, input: Either.getRight(codecs.input.decode(item.payload)) }
    )
    if (input === undefined) return Effect.succeed(false)
    // Only an accepted input handles the dead letter; a rejected one (or a completed instance) leaves it visible.
    return Effect.flatMap(service.execute(entry.workflow, input), (outcome) =>
      outcome._tag === "Accepted"
        ? Effect.succeed(true)
        : Effect.as(
          Effect.logWarning(`onDeadLetter's input was not accepted (${outcome._tag}); leaving a plain dead letter`),
          false
        ))
  }).pipe(
    Effect.catchAllCause((cause) =>
      Effect.as(Effect.logError("onDeadLetter could not deliver its input; leaving a plain dead letter", cause), false)
    ),
    Effect.map((handled) => handled ? { ...failed, disposition: { _tag: "DeadLetterHandled" } } : failed)
  )
}

/** Decides what becomes of the row, hands a dead letter to its workflow if it asks, and counts the outcome. */
const conclude = (
  options: Options,
  entry: WorkflowRegistry.Entry,
  item: ClaimedItem,
  attempt: Pick<Settlement.Attempt, "exit" | "span" | "describe">
): Effect.Effect<Settlement.Settlement> =>
  Settlement.decide({ ...attempt, attempts: item.attempts, policy: policyFor(options.config, entry) }).pipe(
    Effect.flatMap((settlement): Effect.Effect<Settlement.Settlement> =>
      settlement._tag === "Fail" ? handOff(options.service, entry, item, settlement) : Effect.succeed(settlement)
    ),
    Effect.tap((settlement) => Settlement.report(item.kind, item.workflowType, settlement))
  )

/**
 * Runs `work` (timed, in a span) and settles the row from how it ended. The
 * row's span continues the trace of the execute that wrote the row
 * (whichever process that was); a row without a usable trace context starts
 * a trace of its own, never one of whatever span is ambient.
 */
const runAttempt = (
  options: Options,
  item: ClaimedItem,
  entry: WorkflowRegistry.Entry,
  work: Effect.Effect<Option.Option<unknown>, unknown>,
  describe: (cause: Cause.Cause<unknown>) => string
): Effect.Effect<Settlement.Settlement> =>
  Effect.gen(function*() {
    const parent = TraceContext.toParent(item.traceContext)
    const exit = yield* work.pipe(
      timed,
      Effect.zip(Spans.current),
      Spans.withSpan(`ironflow.${item.kind}`, {
        attributes: {
          "ironflow.workflow_type": item.workflowType,
          "ironflow.workflow_id": item.workflowId,
          [`ironflow.${item.kind}_id`]: item.id,
          "ironflow.attempt": item.attempts + 1
        },
        ...(parent === undefined ? { root: true } : { parent })
      }),
      Effect.exit
    )
    const span = Exit.isSuccess(exit) ? exit.value[1] : undefined
    return yield* conclude(options, entry, item, { exit: Exit.map(exit, ([value]) => value), span, describe })
  }).pipe(
    Effect.annotateLogs({
      workflowType: item.workflowType,
      workflowId: item.workflowId,
      [item.kind === "effect" ? "effectId" : "timerId"]: item.id
    })
  )

const unknownType = (item: ClaimedItem) => {
  const settlement = Settlement.unknownType(item.workflowType)
  return Effect.as(Settlement.report(item.kind, item.workflowType, settlement), settlement)
}

/** @internal */
export const make = (options: Options): Attempts => {
  const { config, registry } = options

  const processEffect = (item: ClaimedItem): Effect.Effect<Settlement.Settlement> => {
    const found = registry.get(item.workflowType)
    if (Option.isNone(found)) return unknownType(item)
    const entry = found.value
    const keyFailure = options.takeKeyFailure(item.id)
    if (Option.isSome(keyFailure)) {
      return runAttempt(options, item, entry, Effect.fail(keyFailure.value), Settlement.limitKeyError)
    }
    const context = new EffectContext({
      effectId: item.id,
      workflow: WorkflowId.ref(item.workflowType, item.workflowId),
      attempt: item.attempts + 1,
      createdAt: DateTime.unsafeMake(item.createdAt)
    })
    const work = withTimeout(config, entry, entry.handle(item.payload, context))
    return runAttempt(options, item, entry, work, Settlement.handlerError)
  }

  const processTimer = (item: ClaimedItem): Effect.Effect<Settlement.Settlement> => {
    const found = registry.get(item.workflowType)
    if (Option.isNone(found)) return unknownType(item)
    const decoded = codecsOf(found.value.workflow).input.decode(item.payload).pipe(
      Effect.mapBoth({
        onFailure: (detail) =>
          new SerializationError({ workflowType: item.workflowType, subject: "input", direction: "decode", detail }),
        onSuccess: Option.some
      })
    )
    return runAttempt(options, item, found.value, decoded, Settlement.timerInputError)
  }

  const applyFailed = (item: ClaimedItem, error: unknown) =>
    conclude(options, registry.get(item.workflowType).pipe(Option.getOrThrow), item, {
      exit: Exit.fail(error),
      describe: Settlement.applyError(item.kind)
    })

  return { processEffect, processTimer, applyFailed }
}
