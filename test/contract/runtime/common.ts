import type { WorkflowStore } from "ironflow"
/** Helpers shared by the parts of the WorkflowRuntime contract suite. */
import { SqlClient } from "@effect/sql"
import type { Vitest } from "@effect/vitest"
import type { Fiber } from "effect"
import { Duration, Effect, Option, Ref } from "effect"
import type { EffectContext, RetryPolicy } from "ironflow"
import { CompleteWith, type TestInput, type TestWorkflow } from "../../support/fixtures.js"
import { awaitSome, type QueueRow, type RunningRuntime } from "../../support/runtimeHarness.js"

/** The `it` of the suite: its tests run with the store over one database. */
export type SuiteIt = Vitest.MethodsNonLive<WorkflowStore.WorkflowStore | SqlClient.SqlClient>

// =============================================================================
// Helpers
// =============================================================================

export const allProcessed = (count: number) => (rows: ReadonlyArray<QueueRow>) =>
  rows.length === count && rows.every((row) => row.processedAt !== null)

export const routeCompleted = (ctx: EffectContext.EffectContext, result: string) =>
  Option.some<TestInput>(new CompleteWith({ id: ctx.workflow.workflowId, result }))

/** Shuts a runtime down from another fiber and waits (real time, at most `bound`) for it to finish. */
export const shutdownWithin = (runtime: RunningRuntime, bound: Duration.DurationInput) =>
  Effect.gen(function*() {
    const started = Date.now()
    const fiber = yield* Effect.fork(runtime.shutdown)
    const exit = yield* awaitSome(
      `shutdown within ${Duration.format(Duration.decode(bound))}`,
      Effect.sync(() => Option.fromNullable(fiber.unsafePoll())),
      { timeout: bound, interval: "5 millis" }
    )
    return { exit, elapsedMillis: Date.now() - started }
  })

/** Polls a fiber (real time) until it is done and returns its exit. */
export const awaitFiber = <A, E>(
  label: string,
  fiber: Fiber.RuntimeFiber<A, E>,
  timeout: Duration.DurationInput = "10 seconds"
) => awaitSome(label, Effect.sync(() => Option.fromNullable(fiber.unsafePoll())), { timeout, interval: "5 millis" })

/** Tracks how many wrapped effects run at once, and the peak. */
export const makeConcurrencyGauge = Effect.gen(function*() {
  const current = yield* Ref.make(0)
  const peak = yield* Ref.make(0)
  const track = <A, E, R>(self: Effect.Effect<A, E, R>) =>
    Effect.acquireUseRelease(
      Ref.updateAndGet(current, (n) => n + 1).pipe(Effect.flatMap((n) => Ref.update(peak, (p) => Math.max(p, n)))),
      () => self,
      () => Ref.update(current, (n) => n - 1)
    )
  return { track, peak: Ref.get(peak) }
})

/** Counts handler invocations per effect id. */
export const makeInvocationLog = Effect.gen(function*() {
  const log = yield* Ref.make<
    ReadonlyArray<{ readonly effectId: string; readonly attempt: number; readonly by: string }>
  >(
    []
  )
  return {
    record: (ctx: EffectContext.EffectContext, by = "") =>
      Ref.update(log, (entries) => [...entries, { effectId: ctx.effectId, attempt: ctx.attempt, by }]),
    entries: Ref.get(log),
    countsById: Effect.map(Ref.get(log), (entries) => {
      const counts = new Map<string, number>()
      for (const entry of entries) counts.set(entry.effectId, (counts.get(entry.effectId) ?? 0) + 1)
      return counts
    })
  }
})

/** A handler for `TestWorkflow` built from a function of the effect context. */
export const testHandler = <R = never>(
  workflow: TestWorkflow,
  handle: (ctx: EffectContext.EffectContext) => Effect.Effect<Option.Option<TestInput>, unknown, R>,
  options?: { readonly retryPolicy?: RetryPolicy.RetryPolicy }
) => workflow.handler((_effect, ctx) => handle(ctx), options)

export const setOutboxAttempts = (workflowType: string, attempts: number, lastError: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`UPDATE ironflow.outbox SET attempts = ${attempts}, last_error = ${lastError}
      WHERE workflow_type = ${workflowType}`
  })

export const deleteEvent = (workflowType: string, workflowId: string, sequence: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`DELETE FROM ironflow.events
      WHERE workflow_type = ${workflowType} AND workflow_id = ${workflowId} AND sequence = ${sequence}`
  })
