/**
 * ironflow for Effect: durable, event-sourced workflows on PostgreSQL.
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export * as Database from "./Database.js"
/** @since 0.1.0 */
export * as DeadLetterQuery from "./DeadLetterQuery.js"
/** @since 0.1.0 */
export * as DeadLetters from "./DeadLetters.js"
/** @since 0.1.0 */
export * as DeciderTest from "./DeciderTest.js"
/** @since 0.1.0 */
export * as Decision from "./Decision.js"
/** @since 0.1.0 */
export * as EffectContext from "./EffectContext.js"
/** @since 0.1.0 */
export * as ExecuteOutcome from "./ExecuteOutcome.js"
/** @since 0.1.0 */
export * as Migrations from "./Migrations.js"
/** @since 0.1.0 */
export * as PgliteClient from "./PgliteClient.js"
/** @since 0.1.0 */
export * as PgWorkflowStore from "./PgWorkflowStore.js"
/** @since 0.1.0 */
export * as Projection from "./Projection.js"
/** @since 0.1.0 */
export * as Retention from "./Retention.js"
/** @since 0.1.0 */
export * as RetryPolicy from "./RetryPolicy.js"
/** @since 0.1.0 */
export * as RuntimeConfig from "./RuntimeConfig.js"
/** @since 0.1.0 */
export * as StateMachineView from "./StateMachineView.js"
/** @since 0.1.0 */
export * as TestRuntime from "./TestRuntime.js"
/** @since 0.1.0 */
export * as Timer from "./Timer.js"
/** @since 0.1.0 */
export * as Workflow from "./Workflow.js"
/** @since 0.1.0 */
export * as WorkflowError from "./WorkflowError.js"
/** @since 0.1.0 */
export * as WorkflowId from "./WorkflowId.js"
/** @since 0.1.0 */
export * as WorkflowMetrics from "./WorkflowMetrics.js"
/** @since 0.1.0 */
export * as WorkflowRegistry from "./WorkflowRegistry.js"
/** @since 0.1.0 */
export * as WorkflowRuntime from "./WorkflowRuntime.js"
/** @since 0.1.0 */
export * as WorkflowSchedule from "./WorkflowSchedule.js"
/** @since 0.1.0 */
export * as WorkflowService from "./WorkflowService.js"
/** @since 0.1.0 */
export * as WorkflowStore from "./WorkflowStore.js"
