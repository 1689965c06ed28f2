/** WorkflowRuntime contract: the seed API (spec §7.2 tests 1–3, §3.9, §3.10). */
import { assert, describe } from "@effect/vitest"
import { Deferred, Effect, Equal, Exit, Fiber, Option, Ref, Scope, TestClock } from "effect"
import { ExecuteOutcome, RuntimeConfig, WorkflowError, WorkflowRuntime, WorkflowService, WorkflowStore } from "ironflow"
import {
  EffectlessIncrement,
  makeEffectlessWorkflow,
  makeTestHandler,
  makeTestWorkflow,
  Start
} from "../../support/fixtures.js"
import {
  awaitCondition,
  awaitEventTypes,
  awaitRows,
  enqueueRaw,
  eventTypes,
  fastConfig,
  liveSleep,
  rowsOf,
  startRuntime,
  uniqueType
} from "../../support/runtimeHarness.js"
import { allProcessed, awaitFiber, routeCompleted, shutdownWithin, type SuiteIt, testHandler } from "./common.js"

export const seedApiTests = (it: SuiteIt) => {
  // -----------------------------------------------------------------------
  // Seed API (spec §7.2 tests 1–3, §3.9, §3.10)
  // -----------------------------------------------------------------------
  describe("seed API", () => {
    const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

    it.effect("builder_creates_runtime", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const W = makeTestWorkflow(uniqueType("builder"))
        const runtime = yield* WorkflowRuntime.builder(store, WorkflowService.makeConfig())
          .register(makeTestHandler(W))
          .buildRuntime()
        assert.strictEqual(runtime.workflowCount(), 1)
        assert.isAbove(runtime.workerId().length, 0)
        assert.match(runtime.workerId(), uuidPattern)
        const config = runtime.config()
        const defaults = RuntimeConfig.make()
        assert.isTrue(Option.isNone(config.workerId))
        assert.isTrue(Equal.equals(config.effectPollInterval, defaults.effectPollInterval))
        assert.isTrue(Equal.equals(config.shutdownTimeout, defaults.shutdownTimeout))
        assert.strictEqual(config.effectWorkers, 1)
        assert.strictEqual(config.timerWorkers, 1)
        // Two builds: two random worker ids.
        const other = yield* WorkflowRuntime.builder(store).register(makeTestHandler(W)).buildRuntime()
        assert.notStrictEqual(other.workerId(), runtime.workerId())
      }))

    it.effect("builder_with_custom_config (worker id and config() returned)", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const W = makeTestWorkflow(uniqueType("builder_config"))
        const config = RuntimeConfig.make({ ...fastConfig, workerId: "custom-worker-1", effectWorkers: 2 })
        const runtime = yield* WorkflowRuntime.builder(store).register(makeTestHandler(W)).config(config)
          .buildRuntime()
        assert.strictEqual(runtime.workerId(), "custom-worker-1")
        assert.strictEqual(runtime.config(), config)
        assert.strictEqual(runtime.config().effectWorkers, 2)
      }))

    it.effect("builder_rejects_duplicate_registration (buildRuntime, buildService, buildEngine)", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("duplicate")
        const W = makeTestWorkflow(type)
        const other = uniqueType("duplicate_other")
        const builder = WorkflowRuntime.builder(store)
          .register(makeTestHandler(W))
          .register(makeTestHandler(makeTestWorkflow(other)))
          .register(makeTestHandler(W))
        const builds: ReadonlyArray<Effect.Effect<unknown, WorkflowError.DuplicateWorkflowType>> = [
          builder.buildRuntime(),
          builder.buildService(),
          builder.buildEngine()
        ]
        for (const build of builds) {
          const error = yield* Effect.flip(build)
          assert.instanceOf(error, WorkflowError.DuplicateWorkflowType)
          assert.strictEqual(error.workflowType, type)
        }
        const effectless = makeEffectlessWorkflow(uniqueType("duplicate_effectless"))
        const error = yield* Effect.flip(
          WorkflowRuntime.builder(store).registerWithoutEffects(effectless).registerWithoutEffects(effectless)
            .buildEngine()
        )
        assert.strictEqual(error.workflowType, effectless.type)
      }))

    it.scoped("the runtime Layer fails on a duplicate registration", () =>
      Effect.gen(function*() {
        const type = uniqueType("duplicate_layer")
        const W = makeTestWorkflow(type)
        const error = yield* Effect.flip(startRuntime([makeTestHandler(W), makeTestHandler(W)]))
        assert.instanceOf(error, WorkflowError.DuplicateWorkflowType)
        assert.strictEqual(error.workflowType, type)
      }))

    it.effect("register_without_effects executes and writes no outbox rows", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("effectless")
        const E = makeEffectlessWorkflow(type)
        const engine = yield* WorkflowRuntime.builder(store).registerWithoutEffects(E).buildEngine()
        assert.strictEqual(engine.runtime.workflowCount(), 1)
        assert.strictEqual(engine.runtime.service, engine.service)
        const outcome = yield* engine.service.execute(E, new EffectlessIncrement({ id: "wf-1" }))
        assert.deepStrictEqual(outcome, ExecuteOutcome.Accepted({ eventsAppended: 1 }))
        yield* engine.service.execute(E, new EffectlessIncrement({ id: "wf-1" }))
        assert.deepStrictEqual(yield* engine.service.fetchLatestState(E, "wf-1"), { value: 2 })
        assert.deepStrictEqual(yield* rowsOf("effect", type), [])
        assert.deepStrictEqual(yield* rowsOf("timer", type), [])
      }))

    it.effect("run(shutdown) runs the workers until the shutdown effect completes", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("seed_run")
        const W = makeTestWorkflow(type)
        const runtime = yield* WorkflowRuntime.builder(store).register(makeTestHandler(W))
          .config(RuntimeConfig.make(fastConfig)).buildRuntime()
        const stop = yield* Deferred.make<void>()
        const running = yield* Effect.fork(runtime.run(Deferred.await(stop)))
        yield* runtime.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
        yield* awaitEventTypes(type, "wf-1", ["Started", "Completed"])
        yield* awaitRows("effect", type, "effect processed", allProcessed(1))
        assert.isNull(running.unsafePoll(), "run returns only after the shutdown effect")
        yield* Deferred.succeed(stop, undefined)
        assert.isTrue(Exit.isSuccess(yield* awaitFiber("run", running)))
        // Workers are gone: a new effect stays pending.
        yield* runtime.service.execute(W, new Start({ id: "wf-2", mode: "RouteResult" }))
        yield* TestClock.adjust("1 second")
        yield* liveSleep("200 millis")
        assert.deepStrictEqual(yield* eventTypes(type, "wf-2"), ["Started"])
      }))

    it.effect("run(shutdown) succeeds when the shutdown effect fails", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const W = makeTestWorkflow(uniqueType("seed_run_fail"))
        const runtime = yield* WorkflowRuntime.builder(store).register(makeTestHandler(W))
          .config(RuntimeConfig.make(fastConfig)).buildRuntime()
        const stop = yield* Deferred.make<void, string>()
        const running = yield* Effect.fork(runtime.run(Deferred.await(stop)))
        yield* liveSleep("50 millis")
        yield* Deferred.fail(stop, "shutdown signal failed")
        assert.isTrue(Exit.isSuccess(yield* awaitFiber("run", running)))
      }))

    it.effect("run drains the workers when its fiber is interrupted", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const type = uniqueType("seed_run_interrupt")
        const W = makeTestWorkflow(type)
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const handler = testHandler(W, (ctx) =>
          Deferred.succeed(started, undefined).pipe(
            Effect.zipRight(Deferred.await(gate)),
            Effect.as(routeCompleted(ctx, "finished while draining"))
          ))
        const runtime = yield* WorkflowRuntime.builder(store).register(handler)
          .config(RuntimeConfig.make(fastConfig)).buildRuntime()
        const running = yield* Effect.fork(runtime.run(Effect.never))
        yield* runtime.service.execute(W, new Start({ id: "wf-1", mode: "RouteResult" }))
        yield* Deferred.await(started)
        const interrupting = yield* Effect.fork(Fiber.interrupt(running))
        yield* liveSleep("100 millis")
        assert.isNull(interrupting.unsafePoll(), "interruption waits for the handler in flight")
        yield* Deferred.succeed(gate, undefined)
        yield* awaitFiber("interruption", interrupting)
        assert.deepStrictEqual(yield* eventTypes(type, "wf-1"), ["Started", "Completed"])
        const [row] = yield* rowsOf("effect", type)
        assert.isNotNull(row.processedAt)
      }))

    for (const effectWorkers of [1, 3]) {
      it.scoped(`worker names in locked_by (${effectWorkers} effect worker(s))`, () =>
        Effect.gen(function*() {
          const store = yield* WorkflowStore.WorkflowStore
          const type = uniqueType(`worker_names_${effectWorkers}`)
          const W = makeTestWorkflow(type)
          const workerId = `${type}-worker`
          const running = yield* Ref.make(0)
          const gate = yield* Deferred.make<void>()
          const handler = testHandler(W, (ctx) =>
            Ref.update(running, (n) => n + 1).pipe(
              Effect.zipRight(Deferred.await(gate)),
              Effect.as(routeCompleted(ctx, "success"))
            ))
          const runtime = yield* WorkflowRuntime.builder(store).register(handler)
            .config(
              RuntimeConfig.make({
                ...fastConfig,
                workerId,
                effectWorkers,
                claimBatchSize: 1,
                handlerConcurrency: 1
              })
            )
            .buildRuntime()
          const scope = yield* Scope.make()
          yield* Effect.addFinalizer(() => Scope.close(scope, Exit.void))
          yield* Scope.extend(runtime.start, scope)
          yield* Effect.addFinalizer(() => Deferred.succeed(gate, undefined))
          for (let i = 0; i < effectWorkers; i++) {
            yield* runtime.service.execute(W, new Start({ id: `wf-${i}`, mode: "RouteResult" }))
          }
          yield* awaitCondition(
            "every worker running a handler",
            Effect.map(Ref.get(running), (n) => n === effectWorkers)
          )
          const names = (yield* rowsOf("effect", type)).map((row) => row.lockedBy).sort()
          const expected = effectWorkers === 1
            ? [`${workerId}-effect`]
            : Array.from({ length: effectWorkers }, (_, i) => `${workerId}-effect-${i}`)
          assert.deepStrictEqual(names, expected)
          yield* Deferred.succeed(gate, undefined)
          yield* awaitRows("effect", type, "effects processed", allProcessed(effectWorkers))
          yield* Scope.close(scope, Exit.void)
        }))
    }

    it.scoped("timer and effect workers claim under their names (2 timer workers, 1 effect worker)", () =>
      Effect.gen(function*() {
        const type = uniqueType("timer_names")
        const W = makeTestWorkflow(type)
        const workerId = `${type}-worker`
        const store = yield* WorkflowStore.WorkflowStore
        const claimers = { effect: new Set<string>(), timer: new Set<string>() }
        const lockedBy: Array<string> = []
        const recording: WorkflowStore.WorkflowStore["Type"] = {
          ...store,
          claim: (options) =>
            store.claim(options).pipe(Effect.tap((items) =>
              Effect.sync(() => {
                claimers[options.kind].add(options.workerId)
                for (const item of items) if (item.kind === "timer") lockedBy.push(item.lockedBy)
              })
            ))
        }
        const rt = yield* startRuntime([makeTestHandler(W)], { workerId, timerWorkers: 2 }, recording)
        assert.strictEqual(rt.runtime.workerId(), workerId)
        yield* enqueueRaw(type, "wf-1", { timers: [{ delay: 0, input: { type: "Ping", id: "wf-1" } }] })
        yield* awaitRows("timer", type, "timer processed", allProcessed(1))
        yield* awaitCondition("both timer workers claiming", Effect.sync(() => claimers.timer.size === 2))
        assert.deepStrictEqual([...claimers.timer].sort(), [`${workerId}-timer-0`, `${workerId}-timer-1`])
        assert.deepStrictEqual([...claimers.effect], [`${workerId}-effect`])
        assert.strictEqual(lockedBy.length, 1)
        assert.include([`${workerId}-timer-0`, `${workerId}-timer-1`], lockedBy[0])
      }))

    it.scoped("a runtime without registrations starts, claims nothing and shuts down", () =>
      Effect.gen(function*() {
        const rt = yield* startRuntime([])
        assert.strictEqual(rt.runtime.workflowCount(), 0)
        yield* liveSleep("100 millis")
        const { exit } = yield* shutdownWithin(rt, "5 seconds")
        assert.isTrue(Exit.isSuccess(exit))
      }))

    it("workerName follows ironflow's naming", () => {
      assert.strictEqual(WorkflowRuntime.workerName("w", "effect", 0, 1), "w-effect")
      assert.strictEqual(WorkflowRuntime.workerName("w", "effect", 2, 3), "w-effect-2")
      assert.strictEqual(WorkflowRuntime.workerName("w", "timer", 0, 1), "w-timer")
      assert.strictEqual(WorkflowRuntime.workerName("w", "timer", 0, 2), "w-timer-0")
    })
  })
}
