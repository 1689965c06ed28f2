/** WorkflowRuntime contract: store failures. */
import { assert, describe } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { WorkflowError, WorkflowStore } from "ironflow"
import { makeTestHandler, makeTestWorkflow, Start } from "../../support/fixtures.js"
import {
  awaitCondition,
  awaitEventTypes,
  awaitRows,
  eventTypes,
  rowsOf,
  startRuntime,
  uniqueType
} from "../../support/runtimeHarness.js"
import { allProcessed, makeInvocationLog, routeCompleted, shutdownWithin, type SuiteIt, testHandler } from "./common.js"

export const storeFailuresTests = (it: SuiteIt) => {
  describe("store failures", () => {
    /**
     * The suite's store with failures injected into effect claims and acks (the group transactions that
     * apply handler results with their acks):
     * the first `claims` / `completes` executions fail, and all of them while
     * `down.completes` is set. Decided per execution, so retries see them.
     */
    const flakyStore = (failures: { readonly claims: number; readonly completes: number }) =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const counts = { claims: 0, completes: 0 }
        const down = { completes: false }
        const unavailable = (operation: string) =>
          new WorkflowError.StoreError({ operation, cause: new Error("connection refused (injected)") })
        const flaky: WorkflowStore.WorkflowStore["Type"] = {
          ...store,
          claim: (options) =>
            Effect.suspend(() =>
              options.kind === "effect" && counts.claims++ < failures.claims
                ? Effect.fail(unavailable("claim effects"))
                : store.claim(options)
            ),
          // A worker's acks (and the results applied with them) are one fenced group transaction.
          transactGroup: (request, body) =>
            Effect.suspend(() =>
              request.fence?.kind === "effect" && (counts.completes++ < failures.completes || down.completes)
                ? Effect.fail(unavailable("apply a group"))
                : store.transactGroup(request, body)
            )
        }
        return { store: flaky, counts, down }
      })

    it.scoped("failing claims and acks are retried; the worker keeps going", () =>
      Effect.gen(function*() {
        const type = uniqueType("flaky_store")
        const W = makeTestWorkflow(type)
        const log = yield* makeInvocationLog
        const handler = testHandler(W, (ctx) => log.record(ctx).pipe(Effect.as(routeCompleted(ctx, "success"))))
        const flaky = yield* flakyStore({ claims: 3, completes: 2 })
        const rt = yield* startRuntime([handler], {}, flaky.store)
        yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
        yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"], { timeout: "20 seconds" })
        const [row] = yield* awaitRows("effect", type, "effect processed", allProcessed(1), {
          timeout: "20 seconds"
        })
        assert.strictEqual(row.attempts, 0)
        assert.isAbove(flaky.counts.claims, 3)
        assert.isAbove(flaky.counts.completes, 2)
        assert.strictEqual((yield* log.entries).length, 1)
      }), { timeout: 30_000 })

    it.scoped("shutdown completes while the database rejects every ack", () =>
      Effect.gen(function*() {
        const type = uniqueType("ack_down")
        const W = makeTestWorkflow(type)
        const flaky = yield* flakyStore({ claims: 0, completes: 0 })
        flaky.down.completes = true
        const rt = yield* startRuntime([makeTestHandler(W)], { shutdownTimeout: "1 second" }, flaky.store)
        // Whatever happens, the database "comes back" before the runtime is torn down.
        yield* Effect.addFinalizer(() => Effect.sync(() => (flaky.down.completes = false)))
        yield* rt.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
        yield* awaitCondition("an ack attempted", Effect.sync(() => flaky.counts.completes > 0))
        // Bounded: the shutdown timeout plus the finalizer's own 5 s bound on the last ack, with room to spare.
        const { exit } = yield* shutdownWithin(rt, "20 seconds")
        assert.isTrue(Exit.isSuccess(exit))
        // The ack never landed, and neither did the result applied with it: the row is still pending and
        // will run again (the handler at least once, its result at most once).
        const [row] = yield* rowsOf("effect", type)
        assert.isNull(row.processedAt)
        assert.deepStrictEqual(yield* eventTypes(type, "wf-1"), ["Started"])
      }), { timeout: 40_000 })
  })
}
