/**
 * `WorkflowStore.summarizeByType`, the merge of per-kind queue rows that
 * `ironflow stats` and the console's overview show: no database.
 */
import { assert, describe, it } from "@effect/vitest"
import { WorkflowStore } from "ironflow"

const row = (
  kind: WorkflowStore.QueueKind,
  workflowType: string,
  n: number
): WorkflowStore.QueueStats => ({
  kind,
  workflowType,
  pending: n,
  ready: n + 1,
  expiredLeases: n + 2,
  longRunning: n + 3,
  deadLetters: n + 4,
  timedOutAttempts: kind === "effect" ? n + 5 : 0
})

describe("WorkflowStore.summarizeByType", () => {
  it("puts effects and timers of one type in one summary, and sums what both kinds have", () => {
    const effects = row("effect", "order", 10)
    const timers = row("timer", "order", 100)
    const [order, ...rest] = WorkflowStore.summarizeByType([effects, timers], new Set(["order"]))
    assert.deepStrictEqual(rest, [])
    assert.deepStrictEqual(order, {
      workflowType: "order",
      pendingEffects: effects.pending,
      readyEffects: effects.ready,
      pendingTimers: timers.pending,
      dueTimers: timers.ready,
      expiredLeases: effects.expiredLeases + timers.expiredLeases,
      longRunning: effects.longRunning + timers.longRunning,
      deadLetters: effects.deadLetters + timers.deadLetters,
      timedOutAttempts: effects.timedOutAttempts + timers.timedOutAttempts,
      runByLiveWorker: true
    })
  })

  it("lists the types in the order they first appear, each marked by whether a live worker runs it", () => {
    const rows = [row("timer", "shipment", 1), row("effect", "order", 2), row("effect", "shipment", 3)]
    const summaries = WorkflowStore.summarizeByType(rows, new Set(["shipment", "invoice"]))
    assert.deepStrictEqual(summaries.map((s) => [s.workflowType, s.runByLiveWorker]), [
      ["shipment", true],
      ["order", false]
    ])
    const shipment = summaries[0]!
    assert.strictEqual(shipment.pendingTimers, rows[0]!.pending)
    assert.strictEqual(shipment.pendingEffects, rows[2]!.pending)
    assert.strictEqual(shipment.readyEffects, rows[2]!.ready)
    assert.strictEqual(shipment.dueTimers, rows[0]!.ready)
  })

  it("adds rows of the same type and kind", () => {
    const rows = [row("effect", "order", 1), row("effect", "order", 7)]
    const [order] = WorkflowStore.summarizeByType(rows, new Set())
    assert.strictEqual(order!.pendingEffects, rows[0]!.pending + rows[1]!.pending)
    assert.strictEqual(order!.timedOutAttempts, rows[0]!.timedOutAttempts + rows[1]!.timedOutAttempts)
    assert.strictEqual(order!.pendingTimers, 0)
    assert.isFalse(order!.runByLiveWorker)
  })

  it("summarizes no rows as no types", () => {
    assert.deepStrictEqual(WorkflowStore.summarizeByType([], new Set(["order"])), [])
  })
})
