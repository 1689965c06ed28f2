import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Option, Schema } from "effect"
import { Decision, EffectContext, Workflow, WorkflowError, WorkflowId, WorkflowRegistry } from "ironflow"

const effectId = "01890a5d-ac96-774b-bcce-b302099a8057"

const context = (attempt: number) =>
  new EffectContext.EffectContext({
    effectId,
    workflow: WorkflowId.ref("order", "ord-123"),
    attempt,
    createdAt: DateTime.unsafeMake(0)
  })

describe("EffectContext", () => {
  it("idempotencyKey starts with \"order:ord-123:\" and contains the effect id", () => {
    const key = context(1).idempotencyKey
    assert.isTrue(key.startsWith("order:ord-123:"))
    assert.include(key, effectId)
    assert.strictEqual(key, `order:ord-123:${effectId}`)
  })

  it("idempotencyKey is the same on every attempt of one effect", () => {
    assert.strictEqual(context(1).idempotencyKey, context(4).idempotencyKey)
  })

  it("isRetry is false on the first attempt and true afterwards", () => {
    assert.isFalse(context(1).isRetry)
    assert.isTrue(context(2).isRetry)
    assert.isTrue(context(5).isRetry)
  })

  describe("in a registered handler", () => {
    const Input = Schema.TaggedStruct("Go", { id: Schema.String })
    const Event = Schema.TaggedStruct("Went", {})
    const Send = Schema.TaggedStruct("Send", { to: Schema.String })
    const workflow = Workflow.make({
      type: "context_test",
      state: Schema.Struct({}),
      input: Input,
      event: Event,
      effect: Send,
      initialState: {},
      workflowId: { field: "id" },
      evolve: (state) => state,
      decide: () => Decision.accept(Event.make({}))
    })
    const handler = workflow.handler((effect, ctx) =>
      Effect.gen(function*() {
        const current = yield* EffectContext.CurrentEffectContext
        assert.strictEqual(current, ctx, "the handler's fiber sees its context")
        return Option.some(Input.make({ id: `${effect.to}:${current.idempotencyKey}` }))
      })
    )

    it.effect("the handler receives the decoded effect and its context, also as CurrentEffectContext", () =>
      Effect.gen(function*() {
        const registry = yield* WorkflowRegistry.make([handler])
        const entry = Option.getOrThrow(registry.get("context_test"))
        const routed = yield* entry.handle({ type: "Send", to: "bob" }, context(2))
        assert.deepStrictEqual(routed, Option.some(Input.make({ id: `bob:order:ord-123:${effectId}` })))
      }))

    it.effect("an effect payload that does not decode is a SerializationError", () =>
      Effect.gen(function*() {
        const registry = yield* WorkflowRegistry.make([handler])
        const entry = Option.getOrThrow(registry.get("context_test"))
        const error = yield* entry.handle({ type: "Send" }, context(1)).pipe(Effect.flip)
        assert.instanceOf(error, WorkflowError.SerializationError)
        assert.deepInclude(error, { workflowType: "context_test", subject: "effect", direction: "decode" })
      }))
  })
})
