/**
 * `ironflow projections`: list checkpoints and lag, rebuild (replay from the
 * first event, running the projection's reset when the module exports it),
 * forget a retired projection's checkpoint.
 *
 * @internal
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Projection from "../../Projection.js"
import {
  connection,
  formatDate,
  json,
  loadExports,
  printJson,
  table,
  UsageError,
  withStore,
  workflowsModule
} from "./shared.js"

const nameArg = Args.text({ name: "NAME" }).pipe(Args.withDescription("Projection name"))

const list = Command.make(
  "list",
  { ...connection, json },
  (options) =>
    withStore(options, (store) =>
      Effect.gen(function*() {
        const positions = yield* store.projectionPositions
        if (options.json) return yield* printJson(positions)
        yield* Console.log(
          positions.length === 0 ? "no projections have run or been declared yet" : table(
            ["projection", "last global sequence", "events behind", "updated"],
            positions.map((p) => [p.name, String(p.lastSequence), String(p.eventsBehind), formatDate(p.updatedAt)])
          )
        )
      }))
).pipe(Command.withDescription("Projections, their checkpoints and how far behind they are"))

/** Refuses a name no projection is known by: no checkpoint, and not exported by the module. */
const unknownProjection = (name: string, known: ReadonlyArray<string>, module: boolean) =>
  new UsageError({
    reason: `no projection named ${name} is known to this database (${
      known.length === 0 ? "none is" : `known: ${known.join(", ")}`
    })${module ? "" : "; pass --workflows MODULE exporting it to rebuild one that has not run yet"}`
  })

const rebuild = Command.make(
  "rebuild",
  { ...connection, workflows: workflowsModule, name: nameArg },
  (options) =>
    Effect.gen(function*() {
      const exports = yield* loadExports(options.workflows)
      const projection = exports.filter(Projection.isProjection).find((p) => p.name === options.name)
      yield* withStore(options, (store) =>
        Effect.gen(function*() {
          if (projection === undefined) {
            // A mistyped name would create a checkpoint at the start that holds back retention forever.
            const known = (yield* store.projectionPositions).map((p) => p.name)
            if (!known.includes(options.name)) {
              return yield* unknownProjection(options.name, known, Option.isSome(options.workflows))
            }
          }
          yield* store.resetProjection(
            options.name,
            projection === undefined
              ? Effect.void
              : (projection.reset as Effect.Effect<void, unknown, never>)
          )
        }))
      yield* Console.log(
        projection === undefined
          ? `${options.name} will replay every event (its read model was not cleared: pass --workflows MODULE exporting the projection to run its reset)`
          : `${options.name} was reset and will replay every event`
      )
    })
).pipe(Command.withDescription("Replay a projection from the first event (waits for its active runner's tick)"))

const forget = Command.make(
  "forget",
  { ...connection, name: nameArg },
  (options) =>
    withStore(options, (store) =>
      Effect.gen(function*() {
        const known = (yield* store.projectionPositions).map((p) => p.name)
        if (!known.includes(options.name)) return yield* unknownProjection(options.name, known, true)
        yield* store.forgetProjection(options.name)
        yield* Console.log(
          `${options.name} is forgotten: it no longer holds back retention (a runner of it that is still running records it again)`
        )
      }))
).pipe(Command.withDescription("Remove a retired projection's checkpoint, so it no longer holds back retention"))

/** @internal */
export const command = Command.make("projections").pipe(
  Command.withDescription("Projections"),
  Command.withSubcommands([list, rebuild, forget])
)
