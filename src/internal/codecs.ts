import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Workflow from "../Workflow.js"
import * as JsonCodec from "./jsonCodec.js"

/** Why a stored event could not be read. @internal */
export type EventReadFailure =
  | { readonly _tag: "Decode"; readonly detail: string }
  | { readonly _tag: "Version" }

/** @internal */
export interface Codecs {
  readonly input: JsonCodec.JsonCodec<any>
  readonly event: JsonCodec.JsonCodec<any>
  readonly effect: JsonCodec.JsonCodec<any>
  readonly state: JsonCodec.JsonCodec<any>
  readonly rejection: JsonCodec.JsonCodec<any>
  /** Reads a stored event of any known version: upcasts it to the current version, then decodes it. */
  readonly readEvent: (json: unknown, version: number) => Either.Either<any, EventReadFailure>
}

const cache = new WeakMap<Workflow.Any, Codecs>()

/**
 * The JSON codecs of a workflow's Schemas, compiled once per definition.
 *
 * @internal
 */
export const codecsOf = (workflow: Workflow.Any): Codecs => {
  let codecs = cache.get(workflow)
  if (codecs === undefined) {
    const event = JsonCodec.make(workflow.event as Schema.Schema<any, any>)
    const upcasters = new Map(
      Object.entries(workflow.upcasters).map(([from, schema]) => [Number(from), Schema.decodeUnknownEither(schema)])
    )
    codecs = {
      input: JsonCodec.make(workflow.input as Schema.Schema<any, any>),
      event,
      effect: JsonCodec.make(workflow.effect as Schema.Schema<any, any>),
      state: JsonCodec.make(workflow.state as Schema.Schema<any, any>),
      rejection: JsonCodec.make(workflow.rejection as Schema.Schema<any, any>),
      readEvent: (json, version) => {
        if (version > workflow.eventVersion || version < 1) return Either.left({ _tag: "Version" })
        let current = json
        for (let v = version; v < workflow.eventVersion; v++) {
          const upcast = upcasters.get(v)
          if (upcast === undefined) return Either.left({ _tag: "Version" })
          const next = upcast(current)
          if (Either.isLeft(next)) {
            return Either.left({
              _tag: "Decode",
              detail: `upcasting from version ${v}: ${ParseResult.TreeFormatter.formatErrorSync(next.left)}`
            })
          }
          current = next.right
        }
        return Either.mapLeft(event.decode(current), (detail) => ({ _tag: "Decode", detail }) as const)
      }
    }
    cache.set(workflow, codecs)
  }
  return codecs
}
