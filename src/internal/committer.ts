/**
 * The committer of a worker: applies the inputs of its done rows and acks
 * them in one group transaction fenced by the worker's lease, then settles,
 * one by one, the rows whose input could not be applied (a failed attempt,
 * as a failing handler). The worker's commit loop calls it; it holds no fiber.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as Tracer from "effect/Tracer"
import type { StoreError } from "../WorkflowError.js"
import type * as WorkflowRegistry from "../WorkflowRegistry.js"
import type * as WorkflowService from "../WorkflowService.js"
import type { QueueKind, WorkflowStore } from "../WorkflowStore.js"
import type * as Attempts from "./attempts.js"
import * as GroupCommit from "./groupCommit.js"
import * as Settlement from "./settlement.js"
import * as Spans from "./spans.js"
import * as Worker from "./worker.js"

/** @internal */
export interface Options {
  readonly store: WorkflowStore["Type"]
  readonly registry: WorkflowRegistry.WorkflowRegistry["Type"]
  readonly service: WorkflowService.WorkflowService["Type"]
  readonly attempts: Attempts.Attempts
}

/**
 * One execute span per input, each the child of the span its handler or timer
 * ran in, rather than one span for the group with links to the others: a link
 * does not make a span part of the linked trace, and each workflow's execute
 * must be in that workflow's own trace. They share the group's timing.
 */
const startSpans = (kind: QueueKind, applied: ReadonlyArray<Worker.Done>) =>
  Effect.forEach(applied, (d) =>
    d.span === undefined ? Effect.succeed(undefined) : Spans.start("ironflow.execute", {
      parent: d.span,
      attributes: {
        "ironflow.workflow_type": d.item.workflowType,
        "ironflow.workflow_id": d.item.workflowId,
        [`ironflow.${kind}_id`]: d.item.id
      }
    }))

const endSpans = (
  spans: ReadonlyArray<Tracer.Span | undefined>,
  exit: Exit.Exit<ReadonlyArray<GroupCommit.ItemResult>, StoreError>
) =>
  Effect.forEach(spans, (span, i) =>
    Spans.end(
      span,
      Exit.flatMap(exit, (results) => {
        const result = results[i]
        span?.attribute("ironflow.outcome", result._tag === "Done" ? result.outcome._tag : result._tag)
        return result._tag === "Failed" ? Exit.fail(result.error) : Exit.void
      })
    ), { discard: true })

/** @internal */
export const make = (options: Options) => {
  const { attempts, registry, service, store } = options
  const traits = GroupCommit.traitsFrom(registry.get)

  const applyOnce = (items: ReadonlyArray<GroupCommit.Item>, fence: GroupCommit.Fence) =>
    GroupCommit.apply(store, service.config, items, fence, traits)

  /**
   * The group in one transaction. If something one of its inputs wrote was
   * refused (not a transient error), the acks alone, then each input alone,
   * so that input fails alone.
   */
  const applyGroup = (items: ReadonlyArray<GroupCommit.Item>, fence: GroupCommit.Fence) =>
    applyOnce(items, fence).pipe(
      Effect.catchAll((error) =>
        GroupCommit.isTransient(error) || items.length + (fence.completed.length > 0 ? 1 : 0) <= 1
          ? Effect.fail(error)
          : Effect.zipRight(
            applyOnce([], fence),
            Effect.forEach(items, (item) =>
              applyOnce([item], { ...fence, completed: [] }).pipe(
                Effect.map(([result]) => result),
                Effect.catchAll((error): Effect.Effect<GroupCommit.ItemResult, StoreError> =>
                  GroupCommit.isTransient(error) ? Effect.fail(error) : Effect.succeed({ _tag: "Failed", error })
                )
              ))
          )
      )
    )

  /** What became of each applied input: counted, logged when fenced, a failed attempt when refused. */
  const settleApplied = (
    kind: QueueKind,
    lockedBy: string,
    applied: ReadonlyArray<Worker.Done>,
    results: ReadonlyArray<GroupCommit.ItemResult>
  ) =>
    Effect.forEach(applied, ({ item }, i) => {
      const result = results[i]
      if (result._tag === "Done") return Settlement.countProcessed(kind, item.workflowType)
      if (result._tag === "Fenced") {
        return Effect.logWarning(
          `${kind} ${item.id}: the lease was lost before its result was applied; nothing applied`
        )
      }
      return Effect.flatMap(attempts.applyFailed(item, result.error), (settlement) =>
        settlement._tag === "Fail"
          ? Worker.recordFailure(store, kind, lockedBy, item.id, settlement.error, settlement.disposition)
          : Effect.void)
    }, { discard: true })

  return (kind: QueueKind) => (lockedBy: string, done: ReadonlyArray<Worker.Done>): Effect.Effect<void, StoreError> =>
    Effect.gen(function*() {
      if (done.length === 0) return
      const completed = done.filter((d) => Option.isNone(d.input))
      const applied = done.filter((d) => Option.isSome(d.input))
      const spans = yield* startSpans(kind, applied)
      const items = applied.map((d, i): GroupCommit.Item => ({
        workflow: registry.get(d.item.workflowType).pipe(Option.getOrThrow).workflow,
        input: Option.getOrThrow(d.input),
        row: d.item.id,
        span: spans[i]
      }))
      const fence = { kind, lockedBy, completed: completed.map((d) => d.item.id) }
      const results = yield* applyGroup(items, fence).pipe(Effect.onExit((exit) => endSpans(spans, exit)))
      yield* Effect.forEach(completed, (d) => Settlement.countProcessed(kind, d.item.workflowType), { discard: true })
      yield* settleApplied(kind, lockedBy, applied, results)
    })
}
