/**
 * Messages of the errors added for handler timeouts and cancellation: what
 * `last_error` and the command print.
 */
import { assert, describe, it } from "@effect/vitest"
import { WorkflowError } from "ironflow"

describe("WorkflowError", () => {
  it("HandlerTimeout says how long the attempt was given, readably", () => {
    const message = (timeoutMillis: number) =>
      new WorkflowError.HandlerTimeout({ workflowType: "order", timeoutMillis }).message
    assert.strictEqual(message(30_000), "timed out after 30 s")
    assert.strictEqual(message(250), "timed out after 250 ms")
    assert.strictEqual(message(90_500), "timed out after 1 min 30 s 500 ms")
    assert.strictEqual(message(2 * 3_600_000 + 5 * 60_000), "timed out after 2 h 5 min")
    assert.strictEqual(message(86_400_000), "timed out after 1 d")
    assert.strictEqual(message(0), "timed out after 0 ms")
  })

  it("CancelNotSupported names the instance and why", () => {
    const error = new WorkflowError.CancelNotSupported({
      workflowType: "order",
      workflowId: "o-1",
      detail: "no cancel"
    })
    assert.strictEqual(error.message, "cannot cancel order:o-1: no cancel")
    assert.strictEqual(error._tag, "CancelNotSupported")
  })
})
