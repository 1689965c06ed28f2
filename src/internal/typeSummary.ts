/**
 * The summary of a workflow type with nothing queued: where
 * `WorkflowStore.summarizeByType` starts a type, and what the console shows
 * for a type that has instances but no queue rows.
 *
 * @internal
 */
import type { TypeSummary } from "../WorkflowStore.js"

/** @internal */
export const idle = (
  workflowType: string,
  runByLiveWorker: boolean
): { -readonly [K in keyof TypeSummary]: TypeSummary[K] } => ({
  workflowType,
  pendingEffects: 0,
  readyEffects: 0,
  pendingTimers: 0,
  dueTimers: 0,
  expiredLeases: 0,
  longRunning: 0,
  deadLetters: 0,
  timedOutAttempts: 0,
  runByLiveWorker
})
