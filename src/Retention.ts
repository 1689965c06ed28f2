/**
 * Retention: deletes what is done and old, in small batches. Off by default.
 *
 * - effect and timer rows processed more than `olderThan` ago;
 * - with `completedInstances`, instances completed more than `olderThan` ago,
 *   with their events, observations and processed rows — but only once no
 *   pending work or dead letter remains for them and every projection known
 *   to the database has read their events. A projection is known from the
 *   moment it starts (`Projection.run` / `Projection.layer`) or is declared
 *   (`Projection.declare`) or rebuilt, with a checkpoint at the start until
 *   it applies an event; a retired one holds retention back until it is
 *   forgotten (`Projection.forget`, `ironflow projections forget NAME`).
 *
 * Pending work and dead letters are never touched. Run it from the runtime
 * (`RuntimeConfig.layer({ retention: { olderThan: "30 days" } })`), or with
 * `ironflow prune --older-than "30 days" [--completed-instances] [--dry-run]`.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { StoreError } from "./WorkflowError.js"
import { type PruneReport, WorkflowStore } from "./WorkflowStore.js"

export type {
  /**
   * @since 0.1.0
   * @category models
   */
  PruneReport
} from "./WorkflowStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Age (since processing, or completion) after which rows may go. */
  readonly olderThan: Duration.DurationInput
  /** Also delete completed instances with their events (default false). */
  readonly completedInstances?: boolean | undefined
  /** Rows per statement (default 500), so no statement holds locks for long. */
  readonly batchSize?: number | undefined
  /** How often the runtime prunes (default 1 hour). */
  readonly interval?: Duration.DurationInput | undefined
}

/**
 * Prunes once (the cutoff is `Clock` time minus `olderThan`). With `dryRun`,
 * counts what would be deleted and deletes nothing.
 *
 * @since 0.1.0
 * @category running
 */
export const prune = (
  options: Options & { readonly dryRun?: boolean | undefined }
): Effect.Effect<PruneReport, StoreError, WorkflowStore> =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore
    const now = yield* Clock.currentTimeMillis
    return yield* store.prune({
      cutoff: new Date(now - Duration.toMillis(Duration.decode(options.olderThan))),
      completedInstances: options.completedInstances ?? false,
      batchSize: Math.max(1, Math.floor(options.batchSize ?? 500)),
      dryRun: options.dryRun ?? false
    })
  })
