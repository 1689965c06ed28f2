import type * as Schema from "effect/Schema"
import type * as Workflow from "../Workflow.js"
import * as JsonCodec from "./jsonCodec.js"

/** @internal */
export interface Codecs {
  readonly input: JsonCodec.JsonCodec<any>
  readonly event: JsonCodec.JsonCodec<any>
  readonly effect: JsonCodec.JsonCodec<any>
  readonly state: JsonCodec.JsonCodec<any>
  readonly rejection: JsonCodec.JsonCodec<any>
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
    codecs = {
      input: JsonCodec.make(workflow.input as Schema.Schema<any, any>),
      event: JsonCodec.make(workflow.event as Schema.Schema<any, any>),
      effect: JsonCodec.make(workflow.effect as Schema.Schema<any, any>),
      state: JsonCodec.make(workflow.state as Schema.Schema<any, any>),
      rejection: JsonCodec.make(workflow.rejection as Schema.Schema<any, any>)
    }
    cache.set(workflow, codecs)
  }
  return codecs
}
