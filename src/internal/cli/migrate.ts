/**
 * `ironflow migrate`: creates or upgrades the schema, and is the one command
 * that creates a missing embedded data directory.
 *
 * @internal
 */
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Migrations from "../../Migrations.js"
import { connection, databaseLayer } from "./shared.js"

/** @internal */
export const command = Command.make(
  "migrate",
  connection,
  (options) =>
    Effect.gen(function*() {
      const applied = yield* Migrations.run
      const status = yield* Migrations.status
      if (status.unknown.length > 0) {
        return yield* Console.log(
          `schema ironflow is at migration ${status.applied}, newer than this build (it knows migrations up to ${status.shipped}): nothing applied; use a newer ironflow to manage this schema`
        )
      }
      yield* Console.log(
        `schema ironflow is at migration ${status.applied}${
          applied.length === 0 ? " (up to date)" : ` (applied ${applied.map((m) => m.version).join(", ")})`
        }`
      )
    }).pipe(Effect.provide(databaseLayer(options, true)))
).pipe(Command.withDescription(
  "Create or upgrade the ironflow schema (safe to run while runtimes are up); creates a missing embedded data directory"
))
