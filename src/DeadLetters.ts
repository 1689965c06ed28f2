/**
 * Dead letters: effects and timers whose retry policy gave up. They stay in
 * their tables (never deleted) until retried.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { StoreError } from "./WorkflowError.js"
import { type DeadLetter, type DeadLetterQuery, WorkflowStore } from "./WorkflowStore.js"

export type {
  /**
   * @since 0.1.0
   * @category models
   */
  DeadLetter
} from "./WorkflowStore.js"

/**
 * @since 0.1.0
 * @category tags
 */
export class DeadLetters extends Context.Tag("ironflow/DeadLetters")<DeadLetters, {
  /** Dead-lettered effects, newest first (default limit 100). */
  readonly fetch: (query?: DeadLetterQuery) => Effect.Effect<ReadonlyArray<DeadLetter>, StoreError>
  /** How many effects are dead (ignores limit and offset). */
  readonly count: (query?: DeadLetterQuery) => Effect.Effect<number, StoreError>
  /**
   * Makes a dead effect runnable again: attempts 0, error and lease cleared,
   * workers woken. Returns false when the id is not a dead letter (unknown,
   * processed, or still pending: a row that is leased or waiting for its
   * retry is never reset, unlike ironflow 0.6.0, so its worker's lease stays
   * valid).
   */
  readonly retry: (effectId: string) => Effect.Effect<boolean, StoreError>
  /** Dead-lettered timers, newest first (default limit 100). */
  readonly fetchTimers: (query?: DeadLetterQuery) => Effect.Effect<ReadonlyArray<DeadLetter>, StoreError>
  /** How many timers are dead. */
  readonly countTimers: (query?: DeadLetterQuery) => Effect.Effect<number, StoreError>
  /** Makes a dead timer runnable again (it fires at once: its fire time has passed). */
  readonly retryTimer: (timerId: string) => Effect.Effect<boolean, StoreError>
}>() {}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<DeadLetters["Type"], never, WorkflowStore> = Effect.map(
  WorkflowStore,
  (store) =>
    DeadLetters.of({
      fetch: (query = {}) => store.fetchDeadLetters("effect", query),
      count: (query = {}) => store.countDeadLetters("effect", query),
      retry: (id) => store.retryDeadLetter("effect", id),
      fetchTimers: (query = {}) => store.fetchDeadLetters("timer", query),
      countTimers: (query = {}) => store.countDeadLetters("timer", query),
      retryTimer: (id) => store.retryDeadLetter("timer", id)
    })
)

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<DeadLetters, never, WorkflowStore> = Layer.effect(DeadLetters, make)
