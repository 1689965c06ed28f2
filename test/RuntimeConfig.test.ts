/**
 * `RuntimeConfig`: ironflow's defaults (spec §3.14, `config.rs` unit test),
 * our additions, clamping, the Layers, and `layerFromEnv` (`IRONFLOW_*`).
 */
import { assert, describe, it } from "@effect/vitest"
import { Config, ConfigProvider, Duration, Effect, Either, Layer, Option } from "effect"
import { RetryPolicy, RuntimeConfig } from "ironflow"

const seconds = (n: number) => Duration.seconds(n)

const assertDuration = (actual: Duration.Duration, expected: Duration.DurationInput, label: string) =>
  assert.strictEqual(Duration.toMillis(actual), Duration.toMillis(Duration.decode(expected)), label)

const delaysOf = (policy: RetryPolicy.RetryPolicy) =>
  Effect.map(RetryPolicy.delays(policy), (delays) => delays.map(Duration.toMillis))

/**
 * Runs `self` with these `IRONFLOW_*` variables set (and every other
 * `IRONFLOW_*` variable removed), restoring the environment afterwards.
 */
const withEnv = <A, E, R>(vars: Record<string, string>, self: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const saved = Object.entries(process.env).filter(([name]) => name.startsWith("IRONFLOW_"))
      for (const [name] of saved) delete process.env[name]
      Object.assign(process.env, vars)
      return saved
    }),
    () => self,
    (saved) =>
      Effect.sync(() => {
        for (const name of Object.keys(process.env)) if (name.startsWith("IRONFLOW_")) delete process.env[name]
        for (const [name, value] of saved) process.env[name] = value
      })
  )

const fromEnv = (overrides?: RuntimeConfig.Options) =>
  Effect.provide(RuntimeConfig.RuntimeConfig, RuntimeConfig.layerFromEnv(overrides))

describe("RuntimeConfig", () => {
  describe("defaults (ironflow's RuntimeConfig::default)", () => {
    it.effect("equal ironflow's", () =>
      Effect.gen(function*() {
        const config = RuntimeConfig.make()
        assertDuration(config.effectPollInterval, "100 millis", "effectPollInterval")
        assertDuration(config.timerPollInterval, "1 second", "timerPollInterval")
        assertDuration(config.effectLockDuration, "300 seconds", "effectLockDuration")
        assertDuration(config.timerLockDuration, "300 seconds", "timerLockDuration")
        assertDuration(config.shutdownTimeout, "30 seconds", "shutdownTimeout")
        assert.isTrue(Option.isNone(config.workerId))
        assert.strictEqual(config.effectWorkers, 1)
        assert.strictEqual(config.timerWorkers, 1)
        // Retry: 5 attempts in all, 1 s base doubling, 300 s cap → 1, 2, 4, 8 s, then a dead letter.
        assert.strictEqual(config.retryPolicy, RetryPolicy.defaultPolicy)
        assert.deepStrictEqual(yield* delaysOf(config.retryPolicy), [1000, 2000, 4000, 8000])
        assert.deepStrictEqual(RetryPolicy.defaults, {
          maxAttempts: 5,
          baseDelay: seconds(1),
          maxDelay: seconds(300),
          jitter: false
        })
      }))

    it.effect("plus ours: batching, concurrency, heartbeat, per-workflow policies", () =>
      Effect.sync(() => {
        const config = RuntimeConfig.make()
        assert.strictEqual(config.claimBatchSize, 32)
        assert.strictEqual(config.handlerConcurrency, 16)
        // A third of the shorter lease.
        assertDuration(config.leaseHeartbeatInterval, "100 seconds", "leaseHeartbeatInterval")
        assert.deepStrictEqual(config.workflowRetryPolicies, {})
        assert.deepStrictEqual(RuntimeConfig.defaults, {
          effectPollInterval: Duration.millis(100),
          timerPollInterval: seconds(1),
          effectLockDuration: seconds(300),
          timerLockDuration: seconds(300),
          shutdownTimeout: seconds(30),
          effectWorkers: 1,
          timerWorkers: 1,
          claimBatchSize: 32,
          handlerConcurrency: 16,
          maxClockSkew: seconds(5),
          clockCheckInterval: seconds(10)
        })
        assert.deepStrictEqual(config.maxClockSkew, Option.some(seconds(5)))
        assert.deepStrictEqual(RuntimeConfig.make({ maxClockSkew: "off" }).maxClockSkew, Option.none())
      }))

    it.effect("the RuntimeConfig reference defaults to them when nothing is provided", () =>
      Effect.gen(function*() {
        const config = yield* RuntimeConfig.RuntimeConfig
        const defaults = RuntimeConfig.make()
        assertDuration(config.effectPollInterval, defaults.effectPollInterval, "effectPollInterval")
        assertDuration(config.shutdownTimeout, defaults.shutdownTimeout, "shutdownTimeout")
        assert.strictEqual(config.retryPolicy, RetryPolicy.defaultPolicy)
        assert.isTrue(Option.isNone(config.workerId))
        assert.strictEqual(config.effectWorkers, 1)
        assert.strictEqual(config.timerWorkers, 1)
        assert.strictEqual(config.claimBatchSize, 32)
        assert.strictEqual(config.handlerConcurrency, 16)
      }))
  })

  describe("make", () => {
    it.effect("takes every option", () =>
      Effect.gen(function*() {
        const retryPolicy = RetryPolicy.make({ maxAttempts: 3, baseDelay: "50 millis", maxDelay: "200 millis" })
        const perType = RetryPolicy.make({ maxAttempts: 1 })
        const config = RuntimeConfig.make({
          effectPollInterval: "50 millis",
          timerPollInterval: "100 millis",
          effectLockDuration: "30 seconds",
          timerLockDuration: "1 minute",
          shutdownTimeout: "5 seconds",
          retryPolicy,
          workflowRetryPolicies: { order: perType },
          workerId: "worker-1",
          effectWorkers: 4,
          timerWorkers: 2,
          claimBatchSize: 8,
          handlerConcurrency: 3,
          leaseHeartbeatInterval: "2 seconds"
        })
        assertDuration(config.effectPollInterval, "50 millis", "effectPollInterval")
        assertDuration(config.timerPollInterval, "100 millis", "timerPollInterval")
        assertDuration(config.effectLockDuration, "30 seconds", "effectLockDuration")
        assertDuration(config.timerLockDuration, "1 minute", "timerLockDuration")
        assertDuration(config.shutdownTimeout, "5 seconds", "shutdownTimeout")
        assert.strictEqual(config.retryPolicy, retryPolicy)
        assert.deepStrictEqual(yield* delaysOf(config.retryPolicy), [50, 100])
        assert.strictEqual(config.workflowRetryPolicies.order, perType)
        assert.deepStrictEqual(config.workerId, Option.some("worker-1"))
        assert.strictEqual(config.effectWorkers, 4)
        assert.strictEqual(config.timerWorkers, 2)
        assert.strictEqual(config.claimBatchSize, 8)
        assert.strictEqual(config.handlerConcurrency, 3)
        assertDuration(config.leaseHeartbeatInterval, "2 seconds", "leaseHeartbeatInterval")
      }))

    it.effect("clamps worker counts, batch size and concurrency to at least 1", () =>
      Effect.sync(() => {
        const zero = RuntimeConfig.make({ effectWorkers: 0, timerWorkers: 0, claimBatchSize: 0, handlerConcurrency: 0 })
        assert.deepStrictEqual(
          [zero.effectWorkers, zero.timerWorkers, zero.claimBatchSize, zero.handlerConcurrency],
          [1, 1, 1, 1]
        )
        const negative = RuntimeConfig.make({ effectWorkers: -3, timerWorkers: -1 })
        assert.deepStrictEqual([negative.effectWorkers, negative.timerWorkers], [1, 1])
        const fractional = RuntimeConfig.make({ effectWorkers: 2.7, handlerConcurrency: 1.2 })
        assert.deepStrictEqual([fractional.effectWorkers, fractional.handlerConcurrency], [2, 1])
      }))

    it.effect("the heartbeat defaults to a third of the shorter lease", () =>
      Effect.sync(() => {
        const config = RuntimeConfig.make({ effectLockDuration: "30 seconds", timerLockDuration: "1 minute" })
        assertDuration(config.leaseHeartbeatInterval, "10 seconds", "effect lease shorter")
        const timers = RuntimeConfig.make({ effectLockDuration: "10 minutes", timerLockDuration: "3 seconds" })
        assertDuration(timers.leaseHeartbeatInterval, "1 second", "timer lease shorter")
      }))

    it.effect("a retry policy's schedule caps its delays at maxDelay", () =>
      Effect.gen(function*() {
        const policy = RetryPolicy.make({ maxAttempts: 12, baseDelay: "1 second", maxDelay: "60 seconds" })
        assert.deepStrictEqual(
          yield* delaysOf(policy),
          [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000, 60000]
        )
      }))
  })

  describe("layers", () => {
    it.effect("layer(options) provides the configuration", () =>
      Effect.gen(function*() {
        const config = yield* Effect.provide(
          RuntimeConfig.RuntimeConfig,
          RuntimeConfig.layer({ workerId: "from-layer", effectWorkers: 3 })
        )
        assert.deepStrictEqual(config.workerId, Option.some("from-layer"))
        assert.strictEqual(config.effectWorkers, 3)
        assertDuration(config.effectPollInterval, "100 millis", "unset fields keep their defaults")
      }))

    it.effect("layerConfig reads a record of one Config per field from the ConfigProvider", () =>
      Effect.gen(function*() {
        const config = yield* Effect.provide(
          RuntimeConfig.RuntimeConfig,
          RuntimeConfig.layerConfig({
            effectWorkers: Config.integer("EFFECT_WORKERS"),
            effectPollInterval: Config.duration("POLL")
          })
        ).pipe(
          Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["EFFECT_WORKERS", "3"], ["POLL", "250 millis"]])))
        )
        assert.strictEqual(config.effectWorkers, 3)
        assertDuration(config.effectPollInterval, "250 millis", "effectPollInterval")
        assert.strictEqual(
          config.claimBatchSize,
          RuntimeConfig.defaults.claimBatchSize,
          "unset fields keep their defaults"
        )
      }))

    it.effect("layerConfig(config) reads the documented names; a malformed value is a ConfigError", () =>
      Effect.gen(function*() {
        const read = (entries: ReadonlyArray<readonly [string, string]>) =>
          Effect.provide(RuntimeConfig.RuntimeConfig, RuntimeConfig.layerConfig(RuntimeConfig.config)).pipe(
            Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))
          )
        const config = yield* read([["timerWorkers", "2"], ["maxClockSkew", "off"]])
        assert.strictEqual(config.timerWorkers, 2)
        assert.deepStrictEqual(config.maxClockSkew, Option.none())
        const bad = yield* Effect.either(read([["timerWorkers", "two"]]))
        assert.isTrue(Either.isLeft(bad))
        if (Either.isLeft(bad)) assert.include(String(bad.left), "timerWorkers")
      }))

    it.effect("layerFromEnv reads the IRONFLOW_* variables", () =>
      withEnv(
        {
          IRONFLOW_EFFECT_POLL_INTERVAL: "250 millis",
          IRONFLOW_TIMER_POLL_INTERVAL: "2 seconds",
          IRONFLOW_EFFECT_LOCK_DURATION: "45 seconds",
          IRONFLOW_TIMER_LOCK_DURATION: "90 seconds",
          IRONFLOW_SHUTDOWN_TIMEOUT: "10 seconds",
          IRONFLOW_RETRY_MAX_ATTEMPTS: "4",
          IRONFLOW_RETRY_BASE_DELAY: "2 seconds",
          IRONFLOW_RETRY_MAX_DELAY: "5 seconds",
          IRONFLOW_WORKER_ID: "env-worker",
          IRONFLOW_EFFECT_WORKERS: "3",
          IRONFLOW_TIMER_WORKERS: "2",
          IRONFLOW_CLAIM_BATCH_SIZE: "10",
          IRONFLOW_HANDLER_CONCURRENCY: "4",
          IRONFLOW_LEASE_HEARTBEAT_INTERVAL: "5 seconds",
          IRONFLOW_HANDLER_TIMEOUT: "30 seconds"
        },
        Effect.gen(function*() {
          const config = yield* fromEnv()
          assertDuration(config.effectPollInterval, "250 millis", "effectPollInterval")
          assertDuration(config.timerPollInterval, "2 seconds", "timerPollInterval")
          assertDuration(config.effectLockDuration, "45 seconds", "effectLockDuration")
          assertDuration(config.timerLockDuration, "90 seconds", "timerLockDuration")
          assertDuration(config.shutdownTimeout, "10 seconds", "shutdownTimeout")
          assert.deepStrictEqual(yield* delaysOf(config.retryPolicy), [2000, 4000, 5000])
          assert.deepStrictEqual(config.workerId, Option.some("env-worker"))
          assert.strictEqual(config.effectWorkers, 3)
          assert.strictEqual(config.timerWorkers, 2)
          assert.strictEqual(config.claimBatchSize, 10)
          assert.strictEqual(config.handlerConcurrency, 4)
          assertDuration(config.leaseHeartbeatInterval, "5 seconds", "leaseHeartbeatInterval")
          assertDuration(Option.getOrThrow(config.handlerTimeout), "30 seconds", "handlerTimeout")
        })
      ))

    it.effect("layerFromEnv reads the clock bound: a duration, or off", () =>
      Effect.gen(function*() {
        const bounded = yield* withEnv(
          { IRONFLOW_MAX_CLOCK_SKEW: "2 seconds", IRONFLOW_CLOCK_CHECK_INTERVAL: "3 seconds" },
          fromEnv()
        )
        assert.deepStrictEqual(bounded.maxClockSkew, Option.some(Duration.seconds(2)))
        assertDuration(bounded.clockCheckInterval, "3 seconds", "clockCheckInterval")
        const off = yield* withEnv({ IRONFLOW_MAX_CLOCK_SKEW: "off" }, fromEnv())
        assert.deepStrictEqual(off.maxClockSkew, Option.none())
        const bad = yield* withEnv({ IRONFLOW_MAX_CLOCK_SKEW: "sometimes" }, Effect.either(fromEnv()))
        assert.isTrue(Either.isLeft(bad))
      }))

    it.effect("layerFromEnv without variables gives the defaults", () =>
      withEnv(
        {},
        Effect.gen(function*() {
          const config = yield* fromEnv()
          const defaults = RuntimeConfig.make()
          assertDuration(config.effectPollInterval, defaults.effectPollInterval, "effectPollInterval")
          assertDuration(config.timerPollInterval, defaults.timerPollInterval, "timerPollInterval")
          assertDuration(config.effectLockDuration, defaults.effectLockDuration, "effectLockDuration")
          assertDuration(config.shutdownTimeout, defaults.shutdownTimeout, "shutdownTimeout")
          assertDuration(config.leaseHeartbeatInterval, defaults.leaseHeartbeatInterval, "leaseHeartbeatInterval")
          assert.strictEqual(config.retryPolicy, RetryPolicy.defaultPolicy)
          assert.isTrue(Option.isNone(config.workerId))
          assert.strictEqual(config.effectWorkers, 1)
          assert.strictEqual(config.timerWorkers, 1)
          assert.strictEqual(config.claimBatchSize, 32)
          assert.strictEqual(config.handlerConcurrency, 16)
          assert.isTrue(Option.isNone(config.handlerTimeout), "handler timeouts are off unless set")
        })
      ))

    it.effect("layerFromEnv: one retry variable keeps the other retry defaults", () =>
      withEnv(
        { IRONFLOW_RETRY_MAX_ATTEMPTS: "3" },
        Effect.gen(function*() {
          const config = yield* fromEnv()
          assert.deepStrictEqual(yield* delaysOf(config.retryPolicy), [1000, 2000])
        })
      ))

    it.effect("layerFromEnv: overrides win over the environment", () =>
      withEnv(
        { IRONFLOW_WORKER_ID: "env-worker", IRONFLOW_EFFECT_WORKERS: "3", IRONFLOW_TIMER_WORKERS: "2" },
        Effect.gen(function*() {
          const config = yield* fromEnv({ workerId: "override", effectWorkers: 5 })
          assert.deepStrictEqual(config.workerId, Option.some("override"))
          assert.strictEqual(config.effectWorkers, 5)
          assert.strictEqual(config.timerWorkers, 2)
        })
      ))

    it.effect("layerFromEnv fails with a ConfigError on a malformed value", () =>
      withEnv(
        { IRONFLOW_EFFECT_WORKERS: "many" },
        Effect.gen(function*() {
          const result = yield* Effect.either(Layer.build(RuntimeConfig.layerFromEnv()).pipe(Effect.scoped))
          assert.isTrue(Either.isLeft(result))
          if (Either.isLeft(result)) assert.include(String(result.left), "EFFECT_WORKERS")
        })
      ))

    it.effect("layerFromEnv fails on a malformed duration", () =>
      withEnv(
        { IRONFLOW_SHUTDOWN_TIMEOUT: "soon" },
        Effect.gen(function*() {
          const result = yield* Effect.either(Layer.build(RuntimeConfig.layerFromEnv()).pipe(Effect.scoped))
          assert.isTrue(Either.isLeft(result))
        })
      ))
  })
})
