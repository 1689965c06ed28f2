/**
 * The runtime: effect workers run handlers for the outbox, timer workers fire
 * due timers, both as supervised fibers owned by a scope. Closing the scope
 * (Ctrl+C under `NodeRuntime.runMain`, or the end of `run(shutdown)`) drains
 * them gracefully.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import * as DeadLetters from "./DeadLetters.js"
import { EffectContext } from "./EffectContext.js"
import * as ClockGuard from "./internal/clockGuard.js"
import { codecsOf } from "./internal/codecs.js"
import * as GroupCommit from "./internal/groupCommit.js"
import * as RealTime from "./internal/realTime.js"
import * as Spans from "./internal/spans.js"
import * as TraceContext from "./internal/traceContext.js"
import * as Worker from "./internal/worker.js"
import * as Retention from "./Retention.js"
import * as RetryPolicy from "./RetryPolicy.js"
import * as RuntimeConfig from "./RuntimeConfig.js"
import type * as Workflow from "./Workflow.js"
import { type DuplicateWorkflowType, HandlerTimeout, SerializationError, type StoreError } from "./WorkflowError.js"
import * as WorkflowId from "./WorkflowId.js"
import * as Metrics from "./WorkflowMetrics.js"
import * as WorkflowRegistry from "./WorkflowRegistry.js"
import * as WorkflowService from "./WorkflowService.js"
import {
  type Admission,
  type ClaimedItem,
  type DeadLetter,
  type DeadLetterQuery,
  WorkflowStore
} from "./WorkflowStore.js"

/**
 * @since 0.1.0
 * @category tags
 */
export class WorkflowRuntime extends Context.Tag("ironflow/WorkflowRuntime")<WorkflowRuntime, {
  /** The runtime configuration. */
  readonly config: () => RuntimeConfig.Shape
  /** The configured worker id, or the random UUID chosen when none was configured. */
  readonly workerId: () => string
  /** Registered workflow types. */
  readonly workflowCount: () => number
  /** The service the workers route inputs through. */
  readonly service: WorkflowService.WorkflowService["Type"]
  /**
   * Starts the workers in the current scope; they drain when it closes: no new
   * claims, rows not started yet released at once, handlers in flight given
   * `shutdownTimeout` to finish, then interrupted (their leases released,
   * no attempt counted).
   */
  readonly start: Effect.Effect<void, never, Scope.Scope>
  /**
   * Runs the workers until `shutdown` completes (or fails), or until this
   * fiber is interrupted, then drains them. Always succeeds, as ironflow's
   * `run` always returns `Ok(())`.
   */
  readonly run: <A, E, R>(shutdown: Effect.Effect<A, E, R>) => Effect.Effect<void, never, R>
  /** Dead-lettered effects (ironflow's `fetch_dead_letters`). */
  readonly fetchDeadLetters: (query?: DeadLetterQuery) => Effect.Effect<ReadonlyArray<DeadLetter>, StoreError>
  readonly countDeadLetters: (query?: DeadLetterQuery) => Effect.Effect<number, StoreError>
  readonly retryDeadLetter: (effectId: string) => Effect.Effect<boolean, StoreError>
  readonly fetchTimerDeadLetters: (query?: DeadLetterQuery) => Effect.Effect<ReadonlyArray<DeadLetter>, StoreError>
  readonly countTimerDeadLetters: (query?: DeadLetterQuery) => Effect.Effect<number, StoreError>
  readonly retryTimerDeadLetter: (timerId: string) => Effect.Effect<boolean, StoreError>
}>() {}

/**
 * `"{workerId}-effect"` for a single worker, `"{workerId}-effect-{i}"` for
 * several (i from 0); likewise `-timer`. Stored as `locked_by`.
 *
 * @since 0.1.0
 * @category utils
 */
export const workerName = (workerId: string, kind: "effect" | "timer", index: number, count: number): string =>
  count === 1 ? `${workerId}-${kind}` : `${workerId}-${kind}-${index}`

const policyFor = (config: RuntimeConfig.Shape, entry: WorkflowRegistry.Entry): RetryPolicy.RetryPolicy =>
  Option.getOrElse(entry.retryPolicy, () => config.workflowRetryPolicies[entry.workflow.type] ?? config.retryPolicy)

const describe = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure) && Cause.isFailType(cause)) {
    const error = failure.value
    return error instanceof Error ? error.message : typeof error === "string" ? error : Cause.pretty(cause)
  }
  return Cause.pretty(cause)
}

// Defense in depth: claims only return registered types.
const unknownType = (workflowType: string): Worker.Settlement => ({
  _tag: "Fail",
  error: `Unknown workflow type: ${workflowType}`,
  disposition: { _tag: "DeadLetter" }
})

/**
 * Builds a runtime (workers not started) from the store, registry and
 * service in context and the `RuntimeConfig` reference.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<
  WorkflowRuntime["Type"],
  never,
  WorkflowStore | WorkflowRegistry.WorkflowRegistry | WorkflowService.WorkflowService
> = Effect.gen(function*() {
  const store = yield* WorkflowStore
  const registry = yield* WorkflowRegistry.WorkflowRegistry
  const service = yield* WorkflowService.WorkflowService
  const config = yield* RuntimeConfig.RuntimeConfig
  const deadLetters = yield* Effect.provideService(DeadLetters.make, WorkflowStore, store)
  const workerId = Option.getOrElse(config.workerId, () => randomUUID())

  const traits = GroupCommit.traitsFrom(registry.get)

  // Concurrency and rate limits: admission after each claim, releases after settlements and on a period.
  const limitedEntries = registry.types.flatMap((type) =>
    Option.toArray(Option.filter(registry.get(type), (entry) => entry.limited))
  )
  // Rows whose limit key could not be computed: their attempt fails (retried, then dead-lettered).
  const keyFailures = new Map<string, unknown>()
  // The concurrency limit of each admitted row, to release waiting rows once its slot is free.
  const slotOf = new Map<string, string>()

  const admit = (lockedBy: string, items: ReadonlyArray<ClaimedItem>) =>
    Effect.gen(function*() {
      const admissions: Array<Admission> = []
      for (const item of items) {
        const entry = registry.get(item.workflowType)
        if (Option.isNone(entry) || !entry.value.limited) continue
        const admission = entry.value.admission(item.id, item.payload)
        if (Either.isLeft(admission)) keyFailures.set(item.id, admission.left)
        else admissions.push(admission.right)
      }
      if (admissions.length === 0) return items
      const admitted = new Set(
        yield* store.admit(lockedBy, admissions).pipe(
          Effect.catchAll((error) =>
            Effect.as(Effect.logWarning("could not admit limited effects; their leases will expire", error), [])
          )
        )
      )
      const limited = new Set<string>()
      for (const admission of admissions) {
        limited.add(admission.id)
        if (admitted.has(admission.id) && admission.concurrency !== undefined) {
          slotOf.set(admission.id, admission.concurrency.name)
        }
      }
      return items.filter((item) => !limited.has(item.id) || admitted.has(item.id))
    })

  const onSettled = (items: ReadonlyArray<ClaimedItem>) =>
    Effect.suspend(() => {
      const names = new Set<string>()
      for (const item of items) {
        const name = slotOf.get(item.id)
        if (name !== undefined) {
          slotOf.delete(item.id)
          names.add(name)
        }
        keyFailures.delete(item.id)
      }
      return names.size === 0 ? Effect.void : store.releaseWaiting(Array.from(names)).pipe(
        Effect.catchAll((error) => Effect.logDebug("could not release effects waiting for a slot", error)),
        Effect.asVoid
      )
    })

  // Every limit is looked at on this period (by `Clock` time): slots of leases that expired, rate windows
  // that moved on. A rate limit is looked at ten times per window, at most every 50 ms.
  const releaseEvery = Math.max(
    50,
    Math.min(
      1000,
      ...limitedEntries.flatMap((entry) => entry.ratePerMillis === undefined ? [] : [entry.ratePerMillis / 10])
    )
  )
  let releasedAt = Number.NEGATIVE_INFINITY
  const beforeClaim = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    if (now - releasedAt < releaseEvery) return
    releasedAt = now
    yield* store.releaseWaiting().pipe(
      Effect.catchAll((error) => Effect.logDebug("could not release effects waiting for a slot", error))
    )
  })

  const record = (metric: typeof Metrics.processed, kind: string, workflowType: string) =>
    Metric.increment(Metrics.tagged(metric, { kind, workflow_type: workflowType }))

  const settle = (
    kind: "effect" | "timer",
    item: { readonly workflowType: string },
    settlement: Worker.Settlement
  ): Effect.Effect<Worker.Settlement> =>
    Effect.as(
      settlement._tag === "Complete"
        ? record(Metrics.processed, kind, item.workflowType)
        : settlement._tag === "Fail"
        ? Effect.zipRight(
          settlement.timedOut === true ? record(Metrics.timedOut, kind, item.workflowType) : Effect.void,
          settlement.disposition._tag === "RetryAfter"
            ? record(Metrics.failed, kind, item.workflowType)
            : Effect.zipRight(
              record(Metrics.deadLettered, kind, item.workflowType),
              Effect.logWarning(
                `${kind} dead-lettered after its last attempt${
                  settlement.disposition._tag === "DeadLetterHandled" ? " (handed to the workflow by onDeadLetter)" : ""
                }: ${settlement.error}`
              )
            )
        )
        : Effect.void,
      settlement
    )

  /**
   * A failed attempt: retried on the policy, or dead. A dead row of a workflow
   * with `onDeadLetter` becomes an input for its workflow; once that input is
   * executed, the row is marked handled. If that execute fails, it stays a plain
   * dead letter (never a retry loop).
   */
  const failure = (
    entry: WorkflowRegistry.Entry,
    item: ClaimedItem,
    cause: Cause.Cause<unknown>,
    error: string
  ): Effect.Effect<Worker.Settlement> =>
    Effect.gen(function*() {
      const attempt = item.attempts + 1
      const delay = yield* RetryPolicy.delayAfterFailure(policyFor(config, entry), attempt, cause)
      if (Option.isSome(delay)) {
        return { _tag: "Fail", error, disposition: { _tag: "RetryAfter", delay: delay.value } } as const
      }
      const onDeadLetter = entry.workflow.onDeadLetter
      if (onDeadLetter === undefined) return { _tag: "Fail", error, disposition: { _tag: "DeadLetter" } } as const
      const codecs = codecsOf(entry.workflow)
      const common = { id: item.id, workflowId: item.workflowId, error, attempts: attempt }
      const propagated = yield* Effect.suspend(() => {
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
              Effect.logWarning(
                `onDeadLetter's input was not accepted (${outcome._tag}); leaving a plain dead letter`
              ),
              false
            ))
      }).pipe(
        Effect.catchAllCause((propagationCause) =>
          Effect.as(
            Effect.logError("onDeadLetter could not deliver its input; leaving a plain dead letter", propagationCause),
            false
          )
        )
      )
      return {
        _tag: "Fail",
        error,
        disposition: propagated ? { _tag: "DeadLetterHandled" } : { _tag: "DeadLetter" }
      } as const
    })

  const timed = <A, E, R>(self: Effect.Effect<A, E, R>) =>
    Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      const exit = yield* Effect.exit(self)
      yield* Metric.update(Metrics.handlerDuration, (yield* Clock.currentTimeMillis) - started)
      return yield* exit
    })

  /**
   * One attempt at a claimed row: runs `work` (timed, in a span); its value
   * says what becomes of the row (an input to apply with the ack, or done);
   * interrupted, the row is released (no attempt counted); failed, it is a
   * failed attempt.
   */
  const runAttempt = <A>(
    item: ClaimedItem,
    entry: WorkflowRegistry.Entry,
    work: Effect.Effect<A, unknown>,
    onSuccess: (value: A, span: Tracer.AnySpan | undefined) => Worker.Settlement,
    describeFailure: (cause: Cause.Cause<unknown>) => string
  ): Effect.Effect<Worker.Settlement> =>
    Effect.gen(function*() {
      // The row's span continues the trace of the execute that wrote the row (whichever process that was);
      // a row without a usable trace context starts a trace of its own, never one of whatever span is ambient.
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
      if (exit._tag === "Success") return onSuccess(exit.value[0], exit.value[1])
      if (Cause.isInterruptedOnly(exit.cause)) return { _tag: "Release" } as const
      const settlement = yield* failure(entry, item, exit.cause, describeFailure(exit.cause))
      return timedOut(exit.cause) ? { ...settlement, timedOut: true } : settlement
    }).pipe(
      Effect.flatMap((settlement) =>
        settlement._tag === "Apply" || settlement._tag === "Complete"
          ? Effect.succeed(settlement)
          : settle(item.kind, item, settlement)
      ),
      Effect.annotateLogs({
        workflowType: item.workflowType,
        workflowId: item.workflowId,
        [item.kind === "effect" ? "effectId" : "timerId"]: item.id
      })
    )

  const applyResult = (input: unknown, span: Tracer.AnySpan | undefined): Worker.Settlement => ({
    _tag: "Apply",
    input,
    span
  })

  const timeoutOf = (cause: Cause.Cause<unknown>) =>
    Option.filter(Cause.failureOption(cause), (error): error is HandlerTimeout => error instanceof HandlerTimeout)
  const timedOut = (cause: Cause.Cause<unknown>) => Option.isSome(timeoutOf(cause))
  // A timed-out attempt's last_error is the timeout alone ("timed out after 30 s"), without a stack trace.
  const effectFailure = (cause: Cause.Cause<unknown>) =>
    Option.match(timeoutOf(cause), { onNone: () => Cause.pretty(cause), onSome: (timeout) => timeout.message })

  /**
   * The handler's attempt, bounded by its timeout (the handler's own, else the
   * runtime's; `Clock` time). Disconnected: at the timeout the attempt fails
   * at once, even if the handler ignores interruption; such a handler goes on
   * in the background until it ends by itself, and what it returns then is
   * dropped (the row is already settled: its slot and lease are free).
   */
  const withTimeout = <A>(entry: WorkflowRegistry.Entry, attempt: Effect.Effect<A, unknown>) =>
    Option.match(Option.orElse(entry.timeout, () => config.handlerTimeout), {
      onNone: () => attempt,
      onSome: (limit) =>
        Effect.timeoutFail(Effect.disconnect(attempt), {
          duration: limit,
          onTimeout: () =>
            new HandlerTimeout({ workflowType: entry.workflow.type, timeoutMillis: Duration.toMillis(limit) })
        })
    })

  // An effect: its handler runs; the input it returns is applied with the row's ack by the committer.
  const processEffect = (item: ClaimedItem): Effect.Effect<Worker.Settlement> => {
    const found = registry.get(item.workflowType)
    if (Option.isNone(found)) return settle("effect", item, unknownType(item.workflowType))
    const entry = found.value
    if (keyFailures.has(item.id)) {
      const cause = keyFailures.get(item.id)
      keyFailures.delete(item.id)
      return runAttempt(
        item,
        entry,
        Effect.fail(cause),
        (): Worker.Settlement => ({ _tag: "Complete" }),
        (failure) => `the effect's limit key could not be computed: ${describe(failure)}`
      )
    }
    const context = new EffectContext({
      effectId: item.id,
      workflow: WorkflowId.ref(item.workflowType, item.workflowId),
      attempt: item.attempts + 1,
      createdAt: DateTime.unsafeMake(item.createdAt)
    })
    return runAttempt(
      item,
      entry,
      withTimeout(entry, entry.handle(item.payload, context)),
      (result, span) =>
        Option.match(result, {
          onNone: (): Worker.Settlement => ({ _tag: "Complete" }),
          onSome: (input) => applyResult(input, span)
        }),
      effectFailure
    )
  }

  // A timer: its stored input is decoded here and applied on its instance with the row's ack by the committer.
  const processTimer = (item: ClaimedItem): Effect.Effect<Worker.Settlement> => {
    const found = registry.get(item.workflowType)
    if (Option.isNone(found)) return settle("timer", item, unknownType(item.workflowType))
    const codecs = codecsOf(found.value.workflow)
    return runAttempt(
      item,
      found.value,
      Effect.mapError(
        codecs.input.decode(item.payload),
        (detail) =>
          new SerializationError({ workflowType: item.workflowType, subject: "input", direction: "decode", detail })
      ),
      applyResult,
      timerFailure
    )
  }

  const timerFailure = (cause: Cause.Cause<unknown>) => `Failed to execute timer input: ${describe(cause)}`
  const routeFailure = (cause: Cause.Cause<unknown>) => `Failed to route result: ${describe(cause)}`

  /**
   * The committer of a worker: applies the inputs of its done rows and acks
   * them in one group transaction, then settles, one by one, the rows whose
   * input could not be applied (a failed attempt, as a failing handler).
   */
  const commit = (kind: "effect" | "timer") => (lockedBy: string, done: ReadonlyArray<Worker.Done>) =>
    Effect.gen(function*() {
      if (done.length === 0) return
      const completed = done.filter((d) => Option.isNone(d.input)).map((d) => d.item.id)
      const applied = done.filter((d) => Option.isSome(d.input))
      // One execute span per input, each the child of the span its handler or timer ran in, rather than one
      // span for the group with links to the others: a link does not make a span part of the linked trace,
      // and each workflow's execute must be in that workflow's own trace. They share the group's timing.
      const spans = yield* Effect.forEach(
        applied,
        (d) =>
          d.span === undefined ? Effect.succeed(undefined) : Spans.start("ironflow.execute", {
            parent: d.span,
            attributes: {
              "ironflow.workflow_type": d.item.workflowType,
              "ironflow.workflow_id": d.item.workflowId,
              [`ironflow.${kind}_id`]: d.item.id
            }
          })
      )
      const items = applied.map((d, i): GroupCommit.Item => ({
        workflow: registry.get(d.item.workflowType).pipe(Option.getOrThrow).workflow,
        input: Option.getOrThrow(d.input),
        row: d.item.id,
        span: spans[i]
      }))
      const fence = { kind, lockedBy, completed }
      const results = yield* GroupCommit.apply(store, service.config, items, fence, traits).pipe(
        Effect.catchAll((error) =>
          GroupCommit.isTransient(error) || items.length + (completed.length > 0 ? 1 : 0) <= 1
            ? Effect.fail(error)
            // Something one of them wrote was refused: the acks alone, then each input alone, so it fails alone.
            : Effect.zipRight(
              GroupCommit.apply(store, service.config, [], fence, traits),
              Effect.forEach(items, (item) =>
                GroupCommit.apply(store, service.config, [item], { ...fence, completed: [] }, traits).pipe(
                  Effect.map(([result]) =>
                    result
                  ),
                  Effect.catchAll((error): Effect.Effect<GroupCommit.ItemResult, StoreError> =>
                    GroupCommit.isTransient(error)
                      ? Effect.fail(error)
                      : Effect.succeed({ _tag: "Failed", error })
                  )
                ))
            )
        ),
        Effect.onExit((exit) =>
          Effect.forEach(spans, (span, i) =>
            Spans.end(
              span,
              Exit.flatMap(exit, (results) => {
                const result = results[i]
                span?.attribute("ironflow.outcome", result._tag === "Done" ? result.outcome._tag : result._tag)
                return result._tag === "Failed" ? Exit.fail(result.error) : Exit.void
              })
            ), { discard: true })
        )
      )
      for (const d of done) if (Option.isNone(d.input)) yield* record(Metrics.processed, kind, d.item.workflowType)
      for (let i = 0; i < applied.length; i++) {
        const { item } = applied[i]
        const result = results[i]
        if (result._tag === "Done") {
          yield* record(Metrics.processed, kind, item.workflowType)
        } else if (result._tag === "Fenced") {
          yield* Effect.logWarning(
            `${kind} ${item.id}: the lease was lost before its result was applied; nothing applied`
          )
        } else {
          const cause = Cause.fail(result.error)
          const entry = registry.get(item.workflowType).pipe(Option.getOrThrow)
          const settlement = yield* failure(
            entry,
            item,
            cause,
            kind === "effect" ? routeFailure(cause) : timerFailure(cause)
          ).pipe(
            Effect.flatMap((settlement) => settle(kind, item, settlement))
          )
          if (settlement._tag === "Fail") {
            yield* Worker.recordFailure(store, kind, lockedBy, item.id, settlement.error, settlement.disposition)
          }
        }
      }
    })

  const onClaimed = (items: ReadonlyArray<ClaimedItem>) =>
    items.length === 0 ? Effect.void : Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      for (const item of items) {
        yield* Metric.update(
          Metrics.tagged(Metrics.pickupLatency, { kind: item.kind }),
          Math.max(0, now - item.dueAt.getTime())
        )
      }
    })

  const timerIdle = (types: ReadonlyArray<string>) => (ticket: Effect.Effect<void>) =>
    Effect.gen(function*() {
      const next = yield* store.nextTimerDue(types).pipe(Effect.orElseSucceed(() => Option.none<Date>()))
      const now = yield* Clock.currentTimeMillis
      const poll = Duration.toMillis(config.timerPollInterval)
      // Sleep until the earliest due timer (a due one not claimable yet is being claimed elsewhere: look again soon).
      const wait = Option.match(next, {
        onNone: () => poll,
        onSome: (due) => Math.min(poll, Math.max(due.getTime() - now, Math.min(poll, 10)))
      })
      yield* Effect.raceFirst(ticket, RealTime.sleep(Duration.millis(wait)))
    })

  const start: Effect.Effect<void, never, Scope.Scope> = Effect.gen(function*() {
    const types = registry.types
    if (types.length === 0) {
      yield* Effect.logWarning("no workflows registered; the workers will never claim anything")
    }
    yield* Effect.logInfo(
      `starting workflow runtime: worker id ${workerId}, ${types.length} workflow type(s), ${config.effectWorkers} effect worker(s), ${config.timerWorkers} timer worker(s)`
    )
    // Announce this process and the workflow types it runs, for operators; refreshed with the lease
    // heartbeat, retired after the workers drained (finalizers run in reverse order).
    const ttl = Duration.times(config.leaseHeartbeatInterval, 3)
    const announceWith = (status: ClockGuard.ClockStatus) =>
      store.announceWorker({
        workerId,
        workflowTypes: types,
        host: hostname(),
        pid: process.pid,
        clockOffsetMillis: status.offsetMillis,
        claimsPaused: status.paused
      }, ttl).pipe(
        Effect.catchAll((error) => Effect.logDebug("could not announce this runtime", error))
      )
    // The clock check comes first: a process whose clock disagrees with the database's claims nothing.
    const guard = yield* ClockGuard.start(store, {
      maxSkew: config.maxClockSkew,
      interval: config.clockCheckInterval,
      onChange: announceWith
    })
    const announce = Effect.flatMap(guard.status, announceWith).pipe(Effect.withClock(guard.clock))
    yield* announce
    const announcer = yield* RealTime.spaced(
      RealTime.sleep(config.leaseHeartbeatInterval).pipe(Effect.zipRight(announce)),
      0
    ).pipe(Effect.interruptible, Effect.forkScoped)
    // Stop announcing first: a refresh that lands after the retirement would announce a stopped runtime.
    yield* Effect.addFinalizer(() =>
      Fiber.interrupt(announcer).pipe(
        Effect.zipRight(RealTime.timeoutTo(store.retireWorker(workerId), "5 seconds", () => undefined)),
        Effect.ignore,
        Effect.zipRight(Effect.logInfo("workflow runtime stopped"))
      )
    )
    // Queue depths as gauges (pending, expired leases, dead letters), read every `queueMetricsInterval`.
    yield* RealTime.spaced(
      store.queueStats.pipe(
        Effect.flatMap((stats) =>
          Effect.forEach(stats, (row) => {
            const tagged = <M extends typeof Metrics.pending>(metric: M) =>
              Metric.tagged(Metric.tagged(metric, "kind", row.kind), "workflow_type", row.workflowType)
            return Effect.all([
              Metric.set(tagged(Metrics.pending), row.pending),
              Metric.set(tagged(Metrics.expiredLeases), row.expiredLeases),
              Metric.set(tagged(Metrics.longRunning), row.longRunning),
              Metric.set(tagged(Metrics.deadLetters), row.deadLetters)
            ], { discard: true })
          }, { discard: true })
        ),
        Effect.catchAll((error) => Effect.logDebug("could not read queue depths", error))
      ),
      config.queueMetricsInterval
    ).pipe(Effect.interruptible, Effect.forkScoped)
    if (Option.isSome(config.retention)) {
      const retention = config.retention.value
      yield* RealTime.spaced(
        Retention.prune(retention).pipe(
          Effect.provideService(WorkflowStore, store),
          Effect.tap((report) =>
            report.outbox + report.timers + report.instances > 0
              ? Effect.logInfo(
                `retention: deleted ${report.outbox} effect rows, ${report.timers} timer rows, ${report.instances} instances (${report.events} events)`
              )
              : Effect.void
          ),
          Effect.catchAll((error) => Effect.logWarning("retention run failed", error))
        ),
        retention.interval ?? "1 hour"
      ).pipe(Effect.interruptible, Effect.forkScoped)
    }
    const workers: Array<Worker.Running> = []
    for (let i = 0; i < config.effectWorkers; i++) {
      workers.push(
        yield* Worker.start({
          kind: "effect",
          name: workerName(workerId, "effect", i, config.effectWorkers),
          store,
          workflowTypes: types,
          batchSize: config.claimBatchSize,
          concurrency: config.handlerConcurrency,
          lease: config.effectLockDuration,
          heartbeat: config.leaseHeartbeatInterval,
          shutdownTimeout: config.shutdownTimeout,
          ticket: store.wakeups.effects.ticket,
          idle: (ticket) => Effect.raceFirst(ticket, RealTime.sleep(config.effectPollInterval)),
          process: processEffect,
          commit: commit("effect"),
          onClaimed,
          handlerContext: registry.context,
          awaitClaims: guard.awaitClaims,
          ...(limitedEntries.length === 0 ? {} : { admit, beforeClaim, onSettled })
        }).pipe(Effect.withClock(guard.clock))
      )
    }
    for (let i = 0; i < config.timerWorkers; i++) {
      workers.push(
        yield* Worker.start({
          kind: "timer",
          name: workerName(workerId, "timer", i, config.timerWorkers),
          store,
          workflowTypes: types,
          batchSize: config.claimBatchSize,
          concurrency: config.handlerConcurrency,
          lease: config.timerLockDuration,
          heartbeat: config.leaseHeartbeatInterval,
          shutdownTimeout: config.shutdownTimeout,
          ticket: store.wakeups.timers.ticket,
          idle: timerIdle(types),
          process: processTimer,
          commit: commit("timer"),
          onClaimed,
          handlerContext: Context.empty(),
          awaitClaims: guard.awaitClaims
        }).pipe(Effect.withClock(guard.clock))
      )
    }
    // Shutdown: no worker claims anything once it starts, and all of them drain together, within one
    // shutdownTimeout (plus the last commits) however many workers there are.
    yield* Effect.addFinalizer(() =>
      Effect.zipRight(
        Effect.forEach(workers, (worker) => worker.stopClaiming, { concurrency: "unbounded", discard: true }),
        Effect.forEach(workers, (worker) => worker.drain, { concurrency: "unbounded", discard: true })
      )
    )
  }).pipe(Effect.annotateLogs({ package: "ironflow", workerId }))

  return WorkflowRuntime.of({
    config: () => config,
    workerId: () => workerId,
    workflowCount: () => registry.types.length,
    service,
    start,
    run: (shutdown) => Effect.scoped(Effect.zipRight(start, Effect.ignore(shutdown))),
    fetchDeadLetters: deadLetters.fetch,
    countDeadLetters: deadLetters.count,
    retryDeadLetter: deadLetters.retry,
    fetchTimerDeadLetters: deadLetters.fetchTimers,
    countTimerDeadLetters: deadLetters.countTimers,
    retryTimerDeadLetter: deadLetters.retryTimer
  })
})

/**
 * The runtime with its workers running for the lifetime of the layer, plus
 * the `WorkflowService` and `DeadLetters` it uses. An application is
 * `NodeRuntime.runMain(Layer.launch(app))`; SIGINT/SIGTERM drain the workers.
 *
 * @example
 * ```ts
 * // An application that runs its workflows' effects and timers
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Effect, Layer, Option, Schema } from "effect"
 * import {
 *   Decision,
 *   PgliteClient,
 *   PgWorkflowStore,
 *   RuntimeConfig,
 *   Workflow,
 *   WorkflowRegistry,
 *   WorkflowRuntime,
 *   WorkflowService
 * } from "ironflow"
 *
 * class Send extends Schema.TaggedClass<Send>()("Send", { mailId: Schema.String, to: Schema.String }) {}
 * class Sent extends Schema.TaggedClass<Sent>()("Sent", { mailId: Schema.String }) {}
 * class Requested extends Schema.TaggedClass<Requested>()("Requested", {}) {}
 * class Delivered extends Schema.TaggedClass<Delivered>()("Delivered", {}) {}
 * class Deliver extends Schema.TaggedClass<Deliver>()("Deliver", { to: Schema.String }) {}
 *
 * const Mail = Workflow.make({
 *   type: "mail",
 *   state: Schema.Struct({ sent: Schema.Boolean }),
 *   input: Schema.Union(Send, Sent),
 *   event: Schema.Union(Requested, Delivered),
 *   effect: Deliver,
 *   initialState: { sent: false },
 *   workflowId: { field: "mailId" },
 *   evolve: (_state, event) => ({ sent: event._tag === "Delivered" }),
 *   decide: (_now, _state, input) =>
 *     input._tag === "Send"
 *       ? Decision.accept(new Requested()).pipe(Decision.withEffect(new Deliver({ to: input.to })))
 *       : Decision.accept(new Delivered()),
 *   isTerminal: (state) => state.sent
 * })
 *
 * // The handler runs each effect at least once and routes its result back to the workflow.
 * const MailHandler = Mail.handler((effect, ctx) =>
 *   Effect.log(`mail to ${effect.to}`).pipe(
 *     Effect.as(Option.some(new Sent({ mailId: ctx.workflow.workflowId })))
 *   )
 * )
 *
 * const App = WorkflowRuntime.layer.pipe(
 *   Layer.provide(WorkflowRegistry.layer([MailHandler])),
 *   Layer.provide(RuntimeConfig.layerFromEnv()),
 *   Layer.provide(PgWorkflowStore.layer), // applies the migrations
 *   Layer.provide(PgliteClient.layer()) // in memory here; Database.layerFromEnv() in an application
 * )
 *
 * const program = Effect.gen(function*() {
 *   const service = yield* WorkflowService.WorkflowService
 *   yield* service.execute(Mail, new Send({ mailId: "m-1", to: "ada@example.com" }))
 * })
 *
 * // A service keeps its workers up until SIGINT/SIGTERM: NodeRuntime.runMain(Layer.launch(App))
 * NodeRuntime.runMain(program.pipe(Effect.provide(App)))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  WorkflowRuntime | WorkflowService.WorkflowService | DeadLetters.DeadLetters,
  never,
  WorkflowStore | WorkflowRegistry.WorkflowRegistry
> = Layer.scopedContext(
  Effect.gen(function*() {
    const service = yield* WorkflowService.make
    const runtime = yield* Effect.provideService(make, WorkflowService.WorkflowService, service)
    const deadLetters = yield* DeadLetters.make
    yield* runtime.start
    return Context.make(WorkflowRuntime, runtime).pipe(
      Context.add(WorkflowService.WorkflowService, service),
      Context.add(DeadLetters.DeadLetters, deadLetters)
    )
  })
)

/**
 * ironflow's `WorkflowEngine`: the service and the runtime, sharing one registry.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkflowEngine {
  readonly service: WorkflowService.WorkflowService["Type"]
  readonly runtime: WorkflowRuntime["Type"]
}

/**
 * ironflow's `WorkflowBuilder`: register handlers, set the configuration, then
 * build. A second registration of one workflow type is remembered and every
 * build fails with `DuplicateWorkflowType`. `R` collects what the handlers need.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkflowBuilder<R> {
  readonly register: <R2>(handler: Workflow.WorkflowHandler<Workflow.Any, R2>) => WorkflowBuilder<R | R2>
  readonly registerWithoutEffects: (workflow: Workflow.WithoutEffects) => WorkflowBuilder<R>
  readonly config: (config: RuntimeConfig.Shape) => WorkflowBuilder<R>
  readonly buildService: () => Effect.Effect<WorkflowService.WorkflowService["Type"], DuplicateWorkflowType, R>
  readonly buildRuntime: () => Effect.Effect<WorkflowRuntime["Type"], DuplicateWorkflowType, R>
  readonly buildEngine: () => Effect.Effect<WorkflowEngine, DuplicateWorkflowType, R>
}

const makeBuilder = <R>(
  store: WorkflowStore["Type"],
  serviceConfig: WorkflowService.ServiceConfig,
  registrations: ReadonlyArray<Workflow.Registration<any>>,
  runtimeConfig: RuntimeConfig.Shape
): WorkflowBuilder<R> => {
  const buildEngine = () =>
    Effect.gen(function*() {
      const registry = yield* WorkflowRegistry.make(registrations)
      const service = yield* WorkflowService.make.pipe(
        Effect.provideService(WorkflowRegistry.WorkflowRegistry, registry),
        Effect.provideService(WorkflowService.WorkflowServiceConfig, serviceConfig)
      )
      const runtime = yield* make.pipe(
        Effect.provideService(WorkflowRegistry.WorkflowRegistry, registry),
        Effect.provideService(WorkflowService.WorkflowService, service),
        Effect.provideService(RuntimeConfig.RuntimeConfig, runtimeConfig)
      )
      return { service, runtime }
    }).pipe(Effect.provideService(WorkflowStore, store)) as Effect.Effect<WorkflowEngine, DuplicateWorkflowType, R>
  return {
    register: (handler) => makeBuilder(store, serviceConfig, [...registrations, handler], runtimeConfig),
    registerWithoutEffects: (workflow) =>
      makeBuilder(store, serviceConfig, [...registrations, workflow], runtimeConfig),
    config: (config) => makeBuilder(store, serviceConfig, registrations, config),
    buildService: () => Effect.map(buildEngine(), (engine) => engine.service),
    buildRuntime: () => Effect.map(buildEngine(), (engine) => engine.runtime),
    buildEngine
  }
}

/**
 * Starts ironflow's builder over a store (for example the value of
 * `yield* WorkflowStore`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const builder = (
  store: WorkflowStore["Type"],
  serviceConfig: WorkflowService.ServiceConfig = WorkflowService.makeConfig()
): WorkflowBuilder<never> => makeBuilder(store, serviceConfig, [], RuntimeConfig.make())
