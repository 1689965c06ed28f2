import { assert, describe, it } from "@effect/vitest"
import { Either, Equal, Hash, Schema } from "effect"
import { WorkflowId } from "ironflow"

describe("WorkflowId", () => {
  it("make keeps the string as is; it displays as the raw string", () => {
    const id = WorkflowId.make("ord-123")
    assert.strictEqual(id, "ord-123")
    assert.strictEqual(String(id), "ord-123")
    assert.strictEqual(`${id}`, "ord-123")
  })

  it("ids with the same string are equal", () => {
    assert.strictEqual(WorkflowId.make("ord-123"), WorkflowId.make("ord-123"))
    assert.notStrictEqual(WorkflowId.make("ord-123"), WorkflowId.make("ord-124"))
  })

  it("any string is a valid id", () => {
    for (const raw of ["", "it's \"quoted\"", "ünïcødé-🚀", "'; DROP TABLE x; --", "a:b"]) {
      assert.strictEqual(WorkflowId.make(raw), raw)
    }
  })

  it("its JSON form is the plain string", () => {
    const id = WorkflowId.make("ord-123")
    assert.strictEqual(Schema.encodeSync(WorkflowId.WorkflowId)(id), "ord-123")
    assert.strictEqual(JSON.stringify({ id }), `{"id":"ord-123"}`)
    assert.strictEqual(Schema.decodeUnknownSync(WorkflowId.WorkflowId)("ord-123"), id)
    assert.isTrue(Either.isLeft(Schema.decodeUnknownEither(WorkflowId.WorkflowId)(123)))
  })
})

describe("WorkflowRef", () => {
  it("holds the workflow type and the workflow id", () => {
    const ref = WorkflowId.ref("order", "ord-123")
    assert.strictEqual(ref.workflowType, "order")
    assert.strictEqual(ref.workflowId, WorkflowId.make("ord-123"))
  })

  it("displays as \"type:id\"", () => {
    const ref = WorkflowId.ref("order", "ord-123")
    assert.strictEqual(ref.toString(), "order:ord-123")
    assert.strictEqual(String(ref), "order:ord-123")
    assert.strictEqual(`${ref}`, "order:ord-123")
  })

  it("the constructor and ref build the same value", () => {
    const built = new WorkflowId.WorkflowRef({ workflowType: "order", workflowId: WorkflowId.make("ord-123") })
    assert.isTrue(Equal.equals(built, WorkflowId.ref("order", "ord-123")))
  })

  it("equality and hash depend on both the type and the id", () => {
    const ref = WorkflowId.ref("order", "ord-123")
    assert.isTrue(Equal.equals(ref, WorkflowId.ref("order", "ord-123")))
    assert.strictEqual(Hash.hash(ref), Hash.hash(WorkflowId.ref("order", "ord-123")))
    assert.isFalse(Equal.equals(ref, WorkflowId.ref("invoice", "ord-123")), "the type matters")
    assert.isFalse(Equal.equals(ref, WorkflowId.ref("order", "ord-124")), "the id matters")
    assert.deepStrictEqual(ref, WorkflowId.ref("order", "ord-123"))
  })
})
