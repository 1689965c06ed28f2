import { assert, describe, it } from "@effect/vitest"
import { Either } from "effect"
import { ExecuteOutcome } from "ironflow"

const accepted = ExecuteOutcome.Accepted({ eventsAppended: 2 })
const rejected = ExecuteOutcome.Rejected("42")
const completed = ExecuteOutcome.AlreadyCompleted

describe("ExecuteOutcome", () => {
  it("guards tell the three outcomes apart", () => {
    assert.isTrue(ExecuteOutcome.isAccepted(accepted))
    assert.isTrue(ExecuteOutcome.isRejected(rejected))
    assert.isTrue(ExecuteOutcome.isAlreadyCompleted(completed))
    assert.isFalse(ExecuteOutcome.isAccepted(rejected))
    assert.isFalse(ExecuteOutcome.isRejected(completed))
  })

  it("outcomes compare structurally", () => {
    assert.deepStrictEqual(accepted, ExecuteOutcome.Accepted({ eventsAppended: 2 }))
    assert.deepStrictEqual(rejected, ExecuteOutcome.Rejected("42"))
    assert.notDeepEqual(accepted, ExecuteOutcome.Accepted({ eventsAppended: 1 }))
  })

  it("map transforms only the rejection", () => {
    assert.deepStrictEqual(ExecuteOutcome.map(rejected, Number), ExecuteOutcome.Rejected(42))
    assert.deepStrictEqual(ExecuteOutcome.map(accepted, Number), accepted)
    assert.deepStrictEqual(ExecuteOutcome.map(completed, Number), completed)
  })

  it("tryMap transforms the rejection or fails", () => {
    const parse = (s: string) => {
      const n = Number(s)
      return Number.isNaN(n) ? Either.left(`not a number: ${s}`) : Either.right(n)
    }
    assert.deepStrictEqual(ExecuteOutcome.tryMap(rejected, parse), Either.right(ExecuteOutcome.Rejected(42)))
    assert.deepStrictEqual(
      ExecuteOutcome.tryMap(ExecuteOutcome.Rejected("x"), parse),
      Either.left("not a number: x")
    )
    assert.deepStrictEqual(ExecuteOutcome.tryMap(accepted, parse), Either.right(accepted))
    assert.deepStrictEqual(ExecuteOutcome.tryMap(completed, parse), Either.right(completed))
  })

  it("match dispatches on the outcome", () => {
    const describe = ExecuteOutcome.match({
      Accepted: ({ eventsAppended }) => `accepted ${eventsAppended}`,
      Rejected: ({ reason }) => `rejected ${String(reason)}`,
      AlreadyCompleted: () => "completed"
    })
    assert.deepStrictEqual([describe(accepted), describe(rejected), describe(completed)], [
      "accepted 2",
      "rejected 42",
      "completed"
    ])
  })
})
