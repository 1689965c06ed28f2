/** Helpers shared by the parts of the WorkflowStore contract suite. */
import { SqlClient } from "@effect/sql"
import { assert } from "@effect/vitest"
import type { Vitest } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import { WorkflowStore } from "ironflow"
import { commit } from "../../support/helpers.js"

/** The `it` of the suite: its tests run with the store over one database. */
export type SuiteIt = Vitest.MethodsNonLive<WorkflowStore.WorkflowStore | SqlClient.SqlClient>

/** ironflow's `TEST_LOCK_DURATION`. */
export const LEASE = Duration.seconds(30)

export const { Commit, Rollback } = WorkflowStore.UnitOfWork

export interface SuiteOptions {
  /**
   * Whether two transactions can be open at once. False for PGlite, a single
   * session where one transaction waits for the other to end.
   */
  readonly concurrentTransactions: boolean
}

export const instance = (workflowType: string, workflowId = "id-1", uniqueKey?: string) => ({
  workflowType,
  workflowId,
  uniqueKey: Option.fromNullable(uniqueKey)
})

export const sendEmail = (to: string) => ({ type: "SendEmail", to })
export const timeout = (orderId: string) => ({ type: "Timeout", order_id: orderId })

export const claim = (
  kind: WorkflowStore.QueueKind,
  workflowType: string,
  workerId: string,
  options: { readonly limit?: number; readonly lease?: Duration.DurationInput } = {}
) =>
  Effect.flatMap(WorkflowStore.WorkflowStore, (store) =>
    store.claim({
      kind,
      workerId,
      workflowTypes: [workflowType],
      limit: options.limit ?? 1,
      lease: Duration.decode(options.lease ?? LEASE)
    }))

/** Claims the single runnable row of a type, failing the test if there is none. */
export const claimOne = (
  kind: WorkflowStore.QueueKind,
  workflowType: string,
  workerId: string,
  lease?: Duration.DurationInput
) =>
  Effect.flatMap(claim(kind, workflowType, workerId, lease === undefined ? {} : { lease }), (claimed) => {
    assert.strictEqual(claimed.length, 1, `expected one claimable ${kind} of ${workflowType}`)
    return Effect.succeed(claimed[0])
  })

/** A dead-lettered effect: enqueued, claimed and failed for good. */
export const deadEffect = (workflowType: string, workflowId: string, error = "boom") =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore.WorkflowStore
    yield* commit({ workflowType, workflowId }, { effects: [sendEmail(`${workflowId}@example.com`)] })
    const claimed = yield* claimOne("effect", workflowType, "worker-1")
    assert.isTrue(yield* store.fail("effect", "worker-1", claimed.id, error, { _tag: "DeadLetter" }))
    return claimed.id
  })

export const maxGlobalSequence = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ max: unknown }>`SELECT coalesce(max(global_sequence), 0) AS max FROM ironflow.events`
  return Number(rows[0].max)
})
