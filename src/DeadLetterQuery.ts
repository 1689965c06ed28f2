/**
 * Filters for dead letters, with ironflow's builder functions.
 *
 * @since 0.1.0
 */
import { dual } from "effect/Function"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
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
export const make = (options: DeadLetterQuery = {}): DeadLetterQuery & Pipeable =>
  Object.assign(Object.create(Proto), options)

const Proto: Pipeable = {
  pipe() {
    // eslint-disable-next-line prefer-rest-params
    return pipeArguments(this, arguments)
  }
}

/**
 * @since 0.1.0
 * @category combinators
 */
export const workflowType: {
  (workflowType: string): (self: DeadLetterQuery) => DeadLetterQuery & Pipeable
  (self: DeadLetterQuery, workflowType: string): DeadLetterQuery & Pipeable
} = dual(2, (self: DeadLetterQuery, workflowType: string) => make({ ...self, workflowType }))

/**
 * @since 0.1.0
 * @category combinators
 */
export const workflowId: {
  (workflowId: string): (self: DeadLetterQuery) => DeadLetterQuery & Pipeable
  (self: DeadLetterQuery, workflowId: string): DeadLetterQuery & Pipeable
} = dual(2, (self: DeadLetterQuery, workflowId: string) => make({ ...self, workflowId }))

/**
 * @since 0.1.0
 * @category combinators
 */
export const limit: {
  (limit: number): (self: DeadLetterQuery) => DeadLetterQuery & Pipeable
  (self: DeadLetterQuery, limit: number): DeadLetterQuery & Pipeable
} = dual(2, (self: DeadLetterQuery, limit: number) => make({ ...self, limit }))

/**
 * @since 0.1.0
 * @category combinators
 */
export const offset: {
  (offset: number): (self: DeadLetterQuery) => DeadLetterQuery & Pipeable
  (self: DeadLetterQuery, offset: number): DeadLetterQuery & Pipeable
} = dual(2, (self: DeadLetterQuery, offset: number) => make({ ...self, offset }))
