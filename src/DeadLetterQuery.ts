/**
 * Filters for dead letters, with ironflow's builder functions.
 *
 * @since 0.1.0
 */
import { dual } from "effect/Function"
import type { DeadLetterQuery } from "./WorkflowStore.js"

export type {
  /**
   * @since 0.1.0
   * @category models
   */
  DeadLetterQuery
} from "./WorkflowStore.js"

/**
 * A query; with no options it matches every dead letter (at most 100, newest first).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: DeadLetterQuery = {}): DeadLetterQuery => ({ ...options })

/**
 * @since 0.1.0
 * @category combinators
 */
export const workflowType: {
  (workflowType: string): (self: DeadLetterQuery) => DeadLetterQuery
  (self: DeadLetterQuery, workflowType: string): DeadLetterQuery
} = dual(2, (self: DeadLetterQuery, workflowType: string): DeadLetterQuery => ({ ...self, workflowType }))

/**
 * @since 0.1.0
 * @category combinators
 */
export const workflowId: {
  (workflowId: string): (self: DeadLetterQuery) => DeadLetterQuery
  (self: DeadLetterQuery, workflowId: string): DeadLetterQuery
} = dual(2, (self: DeadLetterQuery, workflowId: string): DeadLetterQuery => ({ ...self, workflowId }))

/**
 * @since 0.1.0
 * @category combinators
 */
export const limit: {
  (limit: number): (self: DeadLetterQuery) => DeadLetterQuery
  (self: DeadLetterQuery, limit: number): DeadLetterQuery
} = dual(2, (self: DeadLetterQuery, limit: number): DeadLetterQuery => ({ ...self, limit }))

/**
 * @since 0.1.0
 * @category combinators
 */
export const offset: {
  (offset: number): (self: DeadLetterQuery) => DeadLetterQuery
  (self: DeadLetterQuery, offset: number): DeadLetterQuery
} = dual(2, (self: DeadLetterQuery, offset: number): DeadLetterQuery => ({ ...self, offset }))
