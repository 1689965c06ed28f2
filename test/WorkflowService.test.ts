/**
 * `WorkflowService`'s configuration layers: `layerWith` (options),
 * `layerConfig` (`Config`, as `PgClient.layerConfig`) and `layerFromEnv`
 * (`IRONFLOW_*`). The service itself runs against both backends in
 * test/contract/serviceSuite.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Config, ConfigProvider, Effect, Either, type Layer } from "effect"
import { WorkflowService } from "ironflow"

const read = <E>(layer: Layer.Layer<never, E>) => Effect.provide(WorkflowService.WorkflowServiceConfig, layer)

const fromMap = (entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))

/** Runs `self` with these `IRONFLOW_*` variables set and no others, restoring the environment afterwards. */
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

describe("WorkflowService configuration", () => {
  it.effect("layerWith(options) provides the options, defaults for the rest", () =>
    Effect.gen(function*() {
      const config = yield* read(WorkflowService.layerWith({ snapshotEvery: 7 }))
      assert.deepStrictEqual(config, WorkflowService.makeConfig({ snapshotEvery: 7 }))
      assert.strictEqual(config.snapshotEvery, 7)
      assert.isFalse(config.recordInputObservations)
    }))

  it.effect("layerConfig reads a record of one Config per field", () =>
    Effect.gen(function*() {
      const config = yield* read(WorkflowService.layerConfig({
        recordInputObservations: Config.boolean("OBSERVE"),
        maxPayloadBytes: Config.integer("MAX_BYTES")
      })).pipe(fromMap([["OBSERVE", "true"], ["MAX_BYTES", "2048"]]))
      assert.deepStrictEqual(
        config,
        WorkflowService.makeConfig({ recordInputObservations: true, maxPayloadBytes: 2048 })
      )
    }))

  it.effect("layerConfig(config) reads the documented names; absent ones keep their defaults", () =>
    Effect.gen(function*() {
      const config = yield* read(WorkflowService.layerConfig(WorkflowService.config)).pipe(
        fromMap([["snapshotEvery", "0"]])
      )
      assert.deepStrictEqual(config, WorkflowService.makeConfig({ snapshotEvery: 0 }))
      const bad = yield* Effect.either(
        read(WorkflowService.layerConfig(WorkflowService.config)).pipe(fromMap([["snapshotEvery", "often"]]))
      )
      assert.isTrue(Either.isLeft(bad))
      if (Either.isLeft(bad)) assert.include(String(bad.left), "snapshotEvery")
    }))

  it.effect("layerFromEnv reads IRONFLOW_* variables; overrides win", () =>
    withEnv(
      { IRONFLOW_RECORD_INPUT_OBSERVATIONS: "true", IRONFLOW_SNAPSHOT_EVERY: "25", IRONFLOW_MAX_PAYLOAD_BYTES: "4096" },
      Effect.gen(function*() {
        const config = yield* read(WorkflowService.layerFromEnv())
        assert.deepStrictEqual(
          config,
          WorkflowService.makeConfig({ recordInputObservations: true, snapshotEvery: 25, maxPayloadBytes: 4096 })
        )
        const overridden = yield* read(WorkflowService.layerFromEnv({ snapshotEvery: 5 }))
        assert.strictEqual(overridden.snapshotEvery, 5)
        assert.strictEqual(overridden.maxPayloadBytes, 4096)
      })
    ))

  it.effect("layerFromEnv without variables gives the defaults", () =>
    withEnv(
      {},
      Effect.map(read(WorkflowService.layerFromEnv()), (config) =>
        assert.deepStrictEqual(config, WorkflowService.makeConfig()))
    ))
})
