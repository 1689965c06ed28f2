/**
 * Identity of workflow instances: a branded `WorkflowId` and the `WorkflowRef`
 * (`type:id`) that names one instance of one workflow type.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Schema from "effect/Schema"

/**
 * The id of one instance within its workflow type. Its JSON form is the plain string.
 *
 * @since 0.1.0
 * @category models
 */
export const WorkflowId = Schema.String.pipe(Schema.brand("ironflow/WorkflowId"))

/**
 * @since 0.1.0
 * @category models
 */
export type WorkflowId = typeof WorkflowId.Type

/**
 * Brands a string as a `WorkflowId`. Any string is a valid id, including the
 * empty string, quotes, unicode and SQL metacharacters.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (id: string): WorkflowId => id as WorkflowId

/**
 * The correlation key of an instance: its workflow type and its id. Two refs are
 * equal when both parts are equal; `toString()` renders `"{type}:{id}"`.
 *
 * @since 0.1.0
 * @category models
 */
export class WorkflowRef extends Data.Class<{
  readonly workflowType: string
  readonly workflowId: WorkflowId
}> {
  /**
   * @since 0.1.0
   */
  override toString(): string {
    return `${this.workflowType}:${this.workflowId}`
  }
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const ref = (workflowType: string, workflowId: string): WorkflowRef =>
  new WorkflowRef({ workflowType, workflowId: make(workflowId) })
