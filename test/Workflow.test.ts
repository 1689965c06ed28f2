import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Logger, Option, Schema } from "effect"
import { Decision, EffectContext, RetryPolicy, Workflow, WorkflowError, WorkflowId, WorkflowRegistry } from "ironflow"

class Place extends Schema.TaggedClass<Place>()("Place", { orderId: Schema.String, amount: Schema.Number }) {}
class Pay extends Schema.TaggedClass<Pay>()("Pay", { orderId: Schema.String }) {}
class Cancel extends Schema.TaggedClass<Cancel>()("Cancel", { id: Schema.String, reason: Schema.String }) {}

const OrderInput = Schema.Union(Place, Pay, Cancel)
const OrderEvent = Schema.TaggedStruct("Placed", {})
const OrderState = Schema.Struct({ placed: Schema.Boolean })

/** A workflow definition whose input Schema and id spec vary; the rest is fixed. */
const define = <I>(
  input: Schema.Schema<I, any>,
  workflowId: Workflow.WorkflowIdField | ((input: I) => string),
  type = "order"
) =>
  Workflow.make({
    type,
    state: OrderState,
    input,
    event: OrderEvent,
    initialState: { placed: false },
    workflowId,
    evolve: (state) => ({ ...state, placed: true }),
    decide: () => Decision.accept(OrderEvent.make({}))
  })

/** Runs a definition, which must throw a WorkflowDefinitionError, and returns the error. */
const definitionError = (f: () => unknown): WorkflowError.WorkflowDefinitionError => {
  try {
    f()
  } catch (error) {
    assert.instanceOf(error, WorkflowError.WorkflowDefinitionError)
    return error as WorkflowError.WorkflowDefinitionError
  }
  return assert.fail("expected a WorkflowDefinitionError when the workflow is defined")
}

describe("Workflow", () => {
  describe("workflow id from a field", () => {
    it("reads the default field on every variant", () => {
      const workflow = define(Schema.Union(Place, Pay), { field: "orderId" })
      assert.strictEqual(workflow.workflowId(new Place({ orderId: "ord-1", amount: 5 })), "ord-1")
      assert.strictEqual(workflow.workflowId(new Pay({ orderId: "ord-2" })), "ord-2")
    })

    it("a per-variant override replaces the default field", () => {
      const workflow = define(OrderInput, { field: "orderId", overrides: { Cancel: "id" } })
      assert.strictEqual(workflow.workflowId(new Place({ orderId: "ord-1", amount: 5 })), "ord-1")
      assert.strictEqual(workflow.workflowId(new Cancel({ id: "ord-3", reason: "changed my mind" })), "ord-3")
    })

    it("overrides alone are enough when they cover every variant", () => {
      const workflow = define(Schema.Union(Pay, Cancel), { overrides: { Pay: "orderId", Cancel: "id" } })
      assert.strictEqual(workflow.workflowId(new Pay({ orderId: "p" })), "p")
      assert.strictEqual(workflow.workflowId(new Cancel({ id: "c", reason: "r" })), "c")
    })

    it("a single tagged variant is a valid input Schema", () => {
      const workflow = define(Pay, { field: "orderId" })
      assert.strictEqual(workflow.workflowId(new Pay({ orderId: "ord-9" })), "ord-9")
    })

    it("a function can compute the id", () => {
      const workflow = define(OrderInput, (input) => input._tag === "Cancel" ? `c-${input.id}` : input.orderId)
      assert.strictEqual(workflow.workflowId(new Cancel({ id: "1", reason: "r" })), "c-1")
    })

    it("a field missing on a variant is rejected, listing the available fields", () => {
      const error = definitionError(() => define(OrderInput, { field: "orderId" }))
      assert.strictEqual(error.workflowType, "order")
      assert.include(error.message, "Cancel")
      assert.include(error.message, "orderId")
      assert.include(error.message, "id, reason")
    })

    it("an override naming an unknown variant is rejected", () => {
      const error = definitionError(() =>
        define(OrderInput, { field: "orderId", overrides: { Cancel: "id", Refund: "id" } })
      )
      assert.include(error.message, "Refund")
    })

    it("an input Schema that is not a tagged union is rejected", () => {
      definitionError(() => define(Schema.Struct({ orderId: Schema.String }), { field: "orderId" }))
      definitionError(() => define(Schema.String, { field: "orderId" }))
    })

    it("a variant with neither an override nor a default field is rejected", () => {
      const error = definitionError(() => define(OrderInput, { overrides: { Cancel: "id" } }))
      assert.include(error.message, "Place")
    })

    it("a workflow id field that is not a string is rejected", () => {
      class Numbered extends Schema.TaggedClass<Numbered>()("Numbered", { orderId: Schema.Number }) {}
      const error = definitionError(() => define(Schema.Union(Pay, Numbered), { field: "orderId" }))
      assert.include(error.message, "Numbered")
    })

    it("string-like fields (literals, branded strings) are accepted", () => {
      class Branded extends Schema.TaggedClass<Branded>()("Branded", { orderId: WorkflowId.WorkflowId }) {}
      class Literal extends Schema.TaggedClass<Literal>()("Literal", { orderId: Schema.Literal("a", "b") }) {}
      const workflow = define(Schema.Union(Branded, Literal), { field: "orderId" })
      assert.strictEqual(workflow.workflowId(new Literal({ orderId: "b" })), "b")
    })
  })

  describe("stored shape", () => {
    it("an input variant with a field named `type` is rejected", () => {
      class Typed extends Schema.TaggedClass<Typed>()("Typed", { orderId: Schema.String, type: Schema.String }) {}
      const error = definitionError(() => define(Schema.Union(Pay, Typed), { field: "orderId" }))
      assert.include(error.message, "Typed")
      assert.include(error.message, "'type'")
    })

    it("an event variant with a field named `type` is rejected", () => {
      const error = definitionError(() =>
        Workflow.make({
          type: "order",
          state: OrderState,
          input: Pay,
          event: Schema.TaggedStruct("Placed", { type: Schema.String }),
          initialState: { placed: false },
          workflowId: { field: "orderId" },
          evolve: (state) => state,
          decide: () => Decision.accept({ _tag: "Placed" as const, type: "x" })
        })
      )
      assert.include(error.message, "Placed")
    })

    it("an empty workflow type is rejected", () => {
      definitionError(() => define(Pay, { field: "orderId" }, ""))
    })
  })

  describe("definition", () => {
    it("defaults: never terminal, no unique key, no effects, cannot reject", () => {
      const workflow = define(Pay, { field: "orderId" })
      assert.isFalse(workflow.isTerminal({ placed: true }))
      assert.isUndefined(workflow.uniqueKey(new Pay({ orderId: "x" })))
      assert.strictEqual<unknown>(workflow.effect, Schema.Never)
      assert.strictEqual<unknown>(workflow.rejection, Schema.Never)
      assert.isTrue(Workflow.isWorkflow(workflow))
      assert.isFalse(Workflow.isWorkflow({ type: "order" }))
    })

    it("decide is called with the given now", () => {
      const seen: Array<number> = []
      const workflow = Workflow.make({
        type: "clock",
        state: OrderState,
        input: Pay,
        event: OrderEvent,
        initialState: { placed: false },
        workflowId: { field: "orderId" },
        evolve: (state) => state,
        decide: (now) => {
          seen.push(now.epochMillis)
          return Decision.accept(OrderEvent.make({}))
        }
      })
      workflow.decide(DateTime.unsafeMake(1234), workflow.initialState, new Pay({ orderId: "x" }))
      assert.deepStrictEqual(seen, [1234])
    })

    it("stateVersion fingerprints the state Schema", () => {
      const a = define(Pay, { field: "orderId" })
      const b = define(Pay, { field: "orderId" }, "other")
      assert.strictEqual(a.stateVersion, b.stateVersion, "same state Schema, same version")
      const changed = Workflow.make({
        type: "order",
        state: Schema.Struct({ placed: Schema.Boolean, count: Schema.Number }),
        input: Pay,
        event: OrderEvent,
        initialState: { placed: false, count: 0 },
        workflowId: { field: "orderId" },
        evolve: (state) => state,
        decide: () => Decision.accept(OrderEvent.make({}))
      })
      assert.notStrictEqual(changed.stateVersion, a.stateVersion)
      const pinned = Workflow.make({
        type: "order",
        state: OrderState,
        input: Pay,
        event: OrderEvent,
        initialState: { placed: false },
        workflowId: { field: "orderId" },
        evolve: (state) => state,
        decide: () => Decision.accept(OrderEvent.make({})),
        stateVersion: "v2"
      })
      assert.strictEqual(pinned.stateVersion, "v2")
    })

    it("handler pairs the workflow with its effect handler and optional retry policy", () => {
      const workflow = define(Pay, { field: "orderId" })
      const policy = RetryPolicy.make({ maxAttempts: 2 })
      const plain = workflow.handler(() => Effect.succeedNone)
      const withPolicy = workflow.handler(() => Effect.succeedNone, { retryPolicy: policy })
      assert.strictEqual(plain.workflow, workflow)
      assert.isTrue(Workflow.isHandler(plain))
      assert.isFalse(Workflow.isHandler(workflow))
      assert.isTrue(Option.isNone(plain.retryPolicy))
      assert.deepStrictEqual(withPolicy.retryPolicy, Option.some(policy))
      assert.isFalse(plain.withoutEffects)
    })

    it.effect("the registry entry of a workflow says withoutEffects like its handler (handlesEffects, deprecated, the negation)", () =>
      Effect.gen(function*() {
        const workflow = define(Pay, { field: "orderId" })
        for (const registration of [workflow.handler(() => Effect.succeedNone), Workflow.withoutEffects(workflow)]) {
          const registry = yield* WorkflowRegistry.make([registration])
          const entry = Option.getOrThrow(registry.get(workflow.type))
          assert.strictEqual(entry.withoutEffects, registration.withoutEffects)
          assert.strictEqual(entry.handlesEffects, !registration.withoutEffects)
        }
      }))

    it.effect("withoutEffects: the no-op handler logs its warning and routes nothing", () =>
      Effect.gen(function*() {
        const workflow = define(Pay, { field: "orderId" })
        const handler = Workflow.withoutEffects(workflow)
        assert.isTrue(handler.withoutEffects)
        assert.strictEqual(Workflow.toHandler(workflow).withoutEffects, true)
        const logs: Array<string> = []
        const capture = Logger.make(({ logLevel, message }) => {
          logs.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
        })
        const ctx = new EffectContext.EffectContext({
          effectId: "e",
          workflow: WorkflowId.ref("order", "x"),
          attempt: 1,
          createdAt: DateTime.unsafeMake(0)
        })
        const routed = yield* handler.handle(undefined as never, ctx).pipe(Effect.provide(Logger.add(capture)))
        assert.isTrue(Option.isNone(routed))
        assert.isTrue(
          logs.some((line) => line.startsWith("WARN") && line.includes("NoopHandler received an effect")),
          logs.join("\n")
        )
      }))
  })
})
