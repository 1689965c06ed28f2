import type { PgClientConfig } from "@effect/sql-pg/PgClient"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import Pg from "pg"
import * as RealTime from "./realTime.js"

/**
 * LISTEN on a dedicated connection that is re-established whenever it is lost
 * (a database restart, a network cut): `@effect/sql-pg`'s listen stream goes
 * silent when its connection dies. After every (re)connection `onPayload`
 * receives `reconnected`, since notifications sent meanwhile were lost. A
 * health query every `healthInterval` catches connections that died quietly.
 *
 * @internal
 */
export const listen = (
  config: PgClientConfig,
  channel: string,
  onPayload: (payload: string) => Effect.Effect<void>,
  options: { readonly healthInterval?: Duration.DurationInput | undefined } = {}
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const payloads = yield* Queue.unbounded<string>()
    yield* Queue.take(payloads).pipe(Effect.flatMap(onPayload), Effect.forever, Effect.interruptible, Effect.forkScoped)

    const connectOnce = Effect.acquireUseRelease(
      Effect.tryPromise(async () => {
        const client = new Pg.Client({
          ...(config.url !== undefined ? { connectionString: Redacted.value(config.url) } : {}),
          ...(config.host !== undefined ? { host: config.host } : {}),
          ...(config.port !== undefined ? { port: config.port } : {}),
          ...(config.database !== undefined ? { database: config.database } : {}),
          ...(config.username !== undefined ? { user: config.username } : {}),
          ...(config.password !== undefined ? { password: Redacted.value(config.password) } : {}),
          ...(config.ssl !== undefined ? { ssl: config.ssl } : {}),
          application_name: "ironflow-listen",
          keepAlive: true
        })
        client.on("error", () => {}) // reported through `lost` below
        await client.connect()
        return client
      }),
      (client) =>
        Effect.gen(function*() {
          const lost = Effect.async<void>((resume) => {
            const done = () => resume(Effect.void)
            client.once("error", done)
            client.once("end", done)
          })
          client.on("notification", (message) => {
            if (message.channel === channel) Queue.unsafeOffer(payloads, message.payload ?? "")
          })
          yield* Effect.tryPromise(() => client.query(`LISTEN ${Pg.escapeIdentifier(channel)}`))
          yield* Queue.offer(payloads, "reconnected")
          const health = RealTime.spaced(
            Effect.tryPromise(() => client.query("SELECT 1")).pipe(
              (query) => RealTime.timeoutTo(Effect.asVoid(query), "10 seconds", () => "timeout" as const),
              Effect.flatMap((result) => (result === "timeout" ? Effect.fail("health query timed out") : Effect.void))
            ),
            options.healthInterval ?? "30 seconds"
          )
          yield* Effect.raceFirst(lost, health)
        }),
      (client) => Effect.promise(() => client.end().catch(() => undefined)).pipe(Effect.timeoutOption("2 seconds"))
    )

    yield* connectOnce.pipe(
      Effect.catchAllCause((cause) => Effect.logDebug("ironflow: the LISTEN connection failed", cause)),
      Effect.zipRight(Effect.logDebug("ironflow: LISTEN connection lost; reconnecting")),
      Effect.zipRight(RealTime.sleep("500 millis")),
      Effect.forever,
      Effect.interruptible,
      Effect.forkScoped
    )
  })
