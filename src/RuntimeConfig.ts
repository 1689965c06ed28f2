/**
 * Configuration of the effect and timer workers. Defaults equal ironflow's
 * `RuntimeConfig::default()`, plus knobs of our own (batching, concurrency,
 * lease heartbeat, per-workflow retry policies).
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Retention from "./Retention.js"
import * as RetryPolicy from "./RetryPolicy.js"

/**
 * The resolved configuration the runtime reads (`RuntimeConfig["Type"]`):
 * every field present, defaults filled in and bounds applied by `make`.
 *
 * @since 0.2.0
 * @category models
 */
export interface Resolved {
  /** Effect workers poll this often when nothing woke them (ironflow default 100 ms). */
  readonly effectPollInterval: Duration.Duration
  /** Longest sleep of a timer worker between looks at the timers (1 s); it wakes at the earliest due timer sooner. */
  readonly timerPollInterval: Duration.Duration
  /** Lease of a claimed effect (300 s); extended by the heartbeat while its handler runs. */
  readonly effectLockDuration: Duration.Duration
  /** Lease of a claimed timer (300 s). */
  readonly timerLockDuration: Duration.Duration
  /** How long shutdown waits for handlers in flight before interrupting them (30 s). */
  readonly shutdownTimeout: Duration.Duration
  /** Default retry policy of effects and timers (5 attempts, 1 s base, 300 s cap). */
  readonly retryPolicy: RetryPolicy.RetryPolicy
  /** Per workflow type retry policies; a handler's own `retryPolicy` option wins over these. */
  readonly workflowRetryPolicies: Readonly<Record<string, RetryPolicy.RetryPolicy>>
  /** Prefix of every worker's lease name; a random UUID when absent. Must be unique per process. */
  readonly workerId: Option.Option<string>
  /** Effect workers (at least 1). */
  readonly effectWorkers: number
  /** Timer workers (at least 1). */
  readonly timerWorkers: number
  /** Rows one worker claims in one statement (and holds at most, running or waiting). */
  readonly claimBatchSize: number
  /** Handlers one worker runs at once. */
  readonly handlerConcurrency: number
  /** How often leases of rows still being handled are extended. */
  readonly leaseHeartbeatInterval: Duration.Duration
  /** Retention job run by the runtime; off (none) by default. */
  readonly retention: Option.Option<Retention.Options>
  /** How often queue depths are read into the gauges of `WorkflowMetrics` (default 15 s). */
  readonly queueMetricsInterval: Duration.Duration
  /**
   * Largest disagreement between this process's `Clock` and the database's
   * clock under which it claims work (default 5 s); beyond it the runtime
   * stops claiming until the clocks agree again. None turns the check off
   * (tests under `TestClock`, whose time is not the database's).
   */
  readonly maxClockSkew: Option.Option<Duration.Duration>
  /** How often the clock is compared with the database's (default 10 s). */
  readonly clockCheckInterval: Duration.Duration
  /**
   * Longest run of one handler attempt (`Clock` time) for handlers without a
   * `timeout` of their own; off (none) by default. An attempt past it is
   * interrupted and counted as a failed attempt.
   */
  readonly handlerTimeout: Option.Option<Duration.Duration>
}

/**
 * @deprecated Renamed `Resolved` (the name says what it is); `Shape` goes in the next release.
 * @since 0.1.0
 * @category models
 */
export type Shape = Resolved

/**
 * The runtime configuration in context; ironflow's defaults when none is provided.
 *
 * @since 0.1.0
 * @category tags
 */
export class RuntimeConfig extends Context.Reference<RuntimeConfig>()("ironflow/RuntimeConfig", {
  defaultValue: (): Resolved => make()
}) {}

/**
 * Options for `make` / `layer`: any field may be left out.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly effectPollInterval?: Duration.DurationInput | undefined
  readonly timerPollInterval?: Duration.DurationInput | undefined
  readonly effectLockDuration?: Duration.DurationInput | undefined
  readonly timerLockDuration?: Duration.DurationInput | undefined
  readonly shutdownTimeout?: Duration.DurationInput | undefined
  readonly retryPolicy?: RetryPolicy.RetryPolicy | undefined
  readonly workflowRetryPolicies?: Readonly<Record<string, RetryPolicy.RetryPolicy>> | undefined
  readonly workerId?: string | undefined
  readonly effectWorkers?: number | undefined
  readonly timerWorkers?: number | undefined
  readonly claimBatchSize?: number | undefined
  readonly handlerConcurrency?: number | undefined
  readonly leaseHeartbeatInterval?: Duration.DurationInput | undefined
  readonly retention?: Retention.Options | undefined
  readonly queueMetricsInterval?: Duration.DurationInput | undefined
  /** A bound, or `"off"` for no clock check (what tests under `TestClock` use). */
  readonly maxClockSkew?: Duration.DurationInput | "off" | undefined
  readonly clockCheckInterval?: Duration.DurationInput | undefined
  readonly handlerTimeout?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  effectPollInterval: Duration.millis(100),
  timerPollInterval: Duration.seconds(1),
  effectLockDuration: Duration.seconds(300),
  timerLockDuration: Duration.seconds(300),
  shutdownTimeout: Duration.seconds(30),
  effectWorkers: 1,
  timerWorkers: 1,
  claimBatchSize: 32,
  handlerConcurrency: 16,
  maxClockSkew: Duration.seconds(5),
  clockCheckInterval: Duration.seconds(10)
} as const

const atLeastOne = (n: number | undefined, fallback: number) => Math.max(1, Math.floor(n ?? fallback))

/**
 * A configuration from options, defaults for the rest. Worker counts, batch
 * size and concurrency are clamped to at least 1; the heartbeat defaults to a
 * third of the shorter lease.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Resolved => {
  const effectLockDuration = Duration.decode(options.effectLockDuration ?? defaults.effectLockDuration)
  const timerLockDuration = Duration.decode(options.timerLockDuration ?? defaults.timerLockDuration)
  return {
    effectPollInterval: Duration.decode(options.effectPollInterval ?? defaults.effectPollInterval),
    timerPollInterval: Duration.decode(options.timerPollInterval ?? defaults.timerPollInterval),
    effectLockDuration,
    timerLockDuration,
    shutdownTimeout: Duration.decode(options.shutdownTimeout ?? defaults.shutdownTimeout),
    retryPolicy: options.retryPolicy ?? RetryPolicy.defaultPolicy,
    workflowRetryPolicies: options.workflowRetryPolicies ?? {},
    workerId: Option.fromNullable(options.workerId),
    effectWorkers: atLeastOne(options.effectWorkers, defaults.effectWorkers),
    timerWorkers: atLeastOne(options.timerWorkers, defaults.timerWorkers),
    claimBatchSize: atLeastOne(options.claimBatchSize, defaults.claimBatchSize),
    handlerConcurrency: atLeastOne(options.handlerConcurrency, defaults.handlerConcurrency),
    leaseHeartbeatInterval: options.leaseHeartbeatInterval !== undefined
      ? Duration.decode(options.leaseHeartbeatInterval)
      : Duration.divide(Duration.min(effectLockDuration, timerLockDuration), 3).pipe(
        Option.getOrElse(() => Duration.seconds(100))
      ),
    retention: Option.fromNullable(options.retention),
    queueMetricsInterval: Duration.decode(options.queueMetricsInterval ?? Duration.seconds(15)),
    maxClockSkew: options.maxClockSkew === "off"
      ? Option.none()
      : Option.some(Duration.decode(options.maxClockSkew ?? defaults.maxClockSkew)),
    clockCheckInterval: Duration.decode(options.clockCheckInterval ?? defaults.clockCheckInterval),
    handlerTimeout: Option.map(Option.fromNullable(options.handlerTimeout), Duration.decode)
  }
}

/**
 * The configuration read from `Config` (names below in constant case with the
 * `IRONFLOW_` prefix when read by `layerFromEnv`). Durations accept values
 * such as `100 millis`, `5 seconds`, `2 minutes`.
 *
 * @since 0.1.0
 * @category configuration
 */
export const config: Config.Config<Options> = Config.all({
  effectPollInterval: Config.option(Config.duration("effectPollInterval")).pipe(
    Config.withDescription("Effect worker poll interval when not woken (default 100 millis)")
  ),
  timerPollInterval: Config.option(Config.duration("timerPollInterval")).pipe(
    Config.withDescription("Longest timer worker sleep (default 1 second)")
  ),
  effectLockDuration: Config.option(Config.duration("effectLockDuration")).pipe(
    Config.withDescription("Lease of a claimed effect (default 300 seconds)")
  ),
  timerLockDuration: Config.option(Config.duration("timerLockDuration")).pipe(
    Config.withDescription("Lease of a claimed timer (default 300 seconds)")
  ),
  shutdownTimeout: Config.option(Config.duration("shutdownTimeout")).pipe(
    Config.withDescription("Wait for in-flight handlers at shutdown (default 30 seconds)")
  ),
  retryMaxAttempts: Config.option(Config.integer("retryMaxAttempts")).pipe(
    Config.withDescription("Attempts in all before a dead letter (default 5)")
  ),
  retryBaseDelay: Config.option(Config.duration("retryBaseDelay")).pipe(
    Config.withDescription("Delay after the first failure (default 1 second)")
  ),
  retryMaxDelay: Config.option(Config.duration("retryMaxDelay")).pipe(
    Config.withDescription("Largest retry delay (default 300 seconds)")
  ),
  retryJitter: Config.option(Config.boolean("retryJitter")).pipe(
    Config.withDescription("Randomize retry delays to 80-120 % (default false)")
  ),
  workerId: Config.option(Config.string("workerId")).pipe(
    Config.withDescription("Worker id prefix, unique per process (default: a random UUID)")
  ),
  effectWorkers: Config.option(Config.integer("effectWorkers")).pipe(
    Config.withDescription("Effect workers (default 1)")
  ),
  timerWorkers: Config.option(Config.integer("timerWorkers")).pipe(Config.withDescription("Timer workers (default 1)")),
  claimBatchSize: Config.option(Config.integer("claimBatchSize")).pipe(
    Config.withDescription("Rows claimed per statement and held per worker (default 32)")
  ),
  handlerConcurrency: Config.option(Config.integer("handlerConcurrency")).pipe(
    Config.withDescription("Handlers run at once per worker (default 16)")
  ),
  leaseHeartbeatInterval: Config.option(Config.duration("leaseHeartbeatInterval")).pipe(
    Config.withDescription("Lease extension interval (default a third of the shorter lease)")
  ),
  retentionOlderThan: Config.option(Config.duration("retentionOlderThan")).pipe(
    Config.withDescription("Turns on retention: delete processed rows older than this (default off)")
  ),
  retentionCompletedInstances: Config.option(Config.boolean("retentionCompletedInstances")).pipe(
    Config.withDescription("Retention also deletes completed instances and their events (default false)")
  ),
  maxClockSkew: Config.option(
    Config.literal("off")("maxClockSkew").pipe(
      Config.orElse((): Config.Config<"off" | Duration.Duration> => Config.duration("maxClockSkew"))
    )
  ).pipe(
    Config.withDescription(
      "Largest clock disagreement with the database before claims pause, or off (default 5 seconds)"
    )
  ),
  clockCheckInterval: Config.option(Config.duration("clockCheckInterval")).pipe(
    Config.withDescription("How often the clock is compared with the database's (default 10 seconds)")
  ),
  handlerTimeout: Config.option(Config.duration("handlerTimeout")).pipe(
    Config.withDescription("Longest run of one handler attempt, for handlers without their own timeout (default off)")
  )
}).pipe(
  Config.map((c): Options => {
    const value = <A>(o: Option.Option<A>) => Option.getOrUndefined(o)
    const retryConfigured = Option.isSome(c.retryMaxAttempts) || Option.isSome(c.retryBaseDelay) ||
      Option.isSome(c.retryMaxDelay) || Option.isSome(c.retryJitter)
    return {
      effectPollInterval: value(c.effectPollInterval),
      timerPollInterval: value(c.timerPollInterval),
      effectLockDuration: value(c.effectLockDuration),
      timerLockDuration: value(c.timerLockDuration),
      shutdownTimeout: value(c.shutdownTimeout),
      retryPolicy: retryConfigured
        ? RetryPolicy.make({
          maxAttempts: value(c.retryMaxAttempts),
          baseDelay: value(c.retryBaseDelay),
          maxDelay: value(c.retryMaxDelay),
          jitter: value(c.retryJitter)
        })
        : undefined,
      workerId: value(c.workerId),
      effectWorkers: value(c.effectWorkers),
      timerWorkers: value(c.timerWorkers),
      claimBatchSize: value(c.claimBatchSize),
      handlerConcurrency: value(c.handlerConcurrency),
      leaseHeartbeatInterval: value(c.leaseHeartbeatInterval),
      handlerTimeout: value(c.handlerTimeout),
      retention: Option.match(c.retentionOlderThan, {
        onNone: () => undefined,
        onSome: (olderThan) => ({ olderThan, completedInstances: value(c.retentionCompletedInstances) })
      }),
      maxClockSkew: value(c.maxClockSkew),
      clockCheckInterval: value(c.clockCheckInterval)
    }
  })
)

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<never> => Layer.succeed(RuntimeConfig, make(options))

/**
 * The configuration with its options read from `Config`, as
 * `PgClient.layerConfig` reads its: either a whole `Config` (such as
 * `config`, read from the application's `ConfigProvider`) or a record of one
 * `Config` per field, e.g.
 * `layerConfig({ effectWorkers: Config.integer("EFFECT_WORKERS") })`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  options: Config.Config.Wrap<Options>
): Layer.Layer<never, ConfigError.ConfigError> =>
  Layer.effect(RuntimeConfig, Effect.map(Config.unwrap(options), (resolved) => make(resolved)))

/**
 * Reads `IRONFLOW_*` environment variables (`IRONFLOW_EFFECT_POLL_INTERVAL`,
 * `IRONFLOW_RETRY_MAX_ATTEMPTS`, ...); `overrides` win over the environment.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromEnv = (overrides: Options = {}): Layer.Layer<never, ConfigError.ConfigError> =>
  Layer.effect(
    RuntimeConfig,
    Effect.map(
      Effect.withConfigProvider(
        config,
        ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase, ConfigProvider.nested("IRONFLOW"))
      ),
      (fromEnv) => make({ ...stripUndefined(fromEnv), ...stripUndefined(overrides) })
    )
  )

const stripUndefined = (options: Options): Options =>
  Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Options
