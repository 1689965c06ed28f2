/**
 * What a handler knows about the effect it runs.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as DateTime from "effect/DateTime"
import type { WorkflowRef } from "./WorkflowId.js"

/**
 * @since 0.1.0
 * @category models
 */
export class EffectContext extends Data.Class<{
  /** The outbox row id (a UUIDv7), stable across retries. */
  readonly effectId: string
  /** The instance that enqueued the effect. */
  readonly workflow: WorkflowRef
  /** 1-based: previous attempts + 1. */
  readonly attempt: number
  readonly createdAt: DateTime.Utc
}> {
  /**
   * `"{workflowType}:{workflowId}:{effectId}"`: the same on every attempt of one
   * effect, different for every effect. Pass it to external systems so a retried
   * handler does not repeat a side effect.
   */
  get idempotencyKey(): string {
    return `${this.workflow.workflowType}:${this.workflow.workflowId}:${this.effectId}`
  }

  /** Whether an earlier attempt failed. */
  get isRetry(): boolean {
    return this.attempt > 1
  }
}

/**
 * The context of the effect being handled, also provided to the handler's
 * fiber so code deep inside it can read the idempotency key.
 *
 * @since 0.1.0
 * @category tags
 */
export class CurrentEffectContext extends Context.Tag("ironflow/EffectContext/CurrentEffectContext")<
  CurrentEffectContext,
  EffectContext
>() {}
