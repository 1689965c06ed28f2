/**
 * The errors of ironflow (spec §3.19). They are `Schema.TaggedError`s so they
 * can cross process boundaries (RPC, stored rendering) with their context.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Schema from "effect/Schema"
import { readable } from "./internal/duration.js"

/**
 * A database operation failed (connection lost, constraint, timeout). Driver
 * errors never escape the store: they arrive as this error.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>("ironflow/StoreError")("StoreError", {
  operation: Schema.String,
  cause: Schema.Defect
}) {
  override get message(): string {
    return `postgres error during ${this.operation}: ${describeCause(this.cause)}`
  }
}

/**
 * A value could not be encoded to, or decoded from, its stored JSON form with
 * its workflow's Schema (an input that fails its Schema, an effect payload or
 * timer input that no longer decodes, a rejection that does not encode).
 *
 * @since 0.1.0
 * @category errors
 */
export class SerializationError extends Schema.TaggedError<SerializationError>("ironflow/SerializationError")(
  "SerializationError",
  {
    workflowType: Schema.String,
    subject: Schema.Literal("input", "event", "effect", "state", "rejection"),
    direction: Schema.Literal("encode", "decode"),
    detail: Schema.String
  }
) {
  override get message(): string {
    return `serialization error: cannot ${this.direction} ${this.subject} of workflow type '${this.workflowType}': ${this.detail}`
  }
}

/**
 * A stored event no longer decodes with the workflow's event Schema. Nothing is
 * written; `sequence` is the 1-based position of the event in its instance.
 *
 * @since 0.1.0
 * @category errors
 */
export class EventDeserializationError
  extends Schema.TaggedError<EventDeserializationError>("ironflow/EventDeserializationError")(
    "EventDeserializationError",
    {
      workflowType: Schema.String,
      workflowId: Schema.String,
      sequence: Schema.Number,
      detail: Schema.String
    }
  )
{
  override get message(): string {
    return `failed to deserialize event at sequence ${this.sequence} for ${this.workflowType}:${this.workflowId}: ${this.detail}`
  }
}

/**
 * A stored event was written with an event version this code cannot read: no
 * upcaster chain leads from it to the current version (or it is newer than
 * the current version, written by newer code). Nothing is written and the
 * instance stays as it is, inspectable with `ironflow instances show`.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownEventVersion extends Schema.TaggedError<UnknownEventVersion>("ironflow/UnknownEventVersion")(
  "UnknownEventVersion",
  {
    workflowType: Schema.String,
    workflowId: Schema.String,
    sequence: Schema.Number,
    version: Schema.Number,
    currentVersion: Schema.Number
  }
) {
  override get message(): string {
    return `event at sequence ${this.sequence} of ${this.workflowType}:${this.workflowId} has version ${this.version}, which this code (event version ${this.currentVersion}) cannot read: ${
      this.version > this.currentVersion ? "it was written by newer code" : `no upcaster from version ${this.version}`
    }`
  }
}

/**
 * An encoded input, event, effect or timer input is larger than the
 * configured cap (`WorkflowServiceConfig.maxPayloadBytes`). Nothing is written.
 *
 * @since 0.1.0
 * @category errors
 */
export class PayloadTooLarge
  extends Schema.TaggedError<PayloadTooLarge>("ironflow/PayloadTooLarge")("PayloadTooLarge", {
    workflowType: Schema.String,
    subject: Schema.Literal("input", "event", "effect", "timer input"),
    bytes: Schema.Number,
    limit: Schema.Number
  })
{
  override get message(): string {
    const article = this.subject === "input" ? "an" : "a"
    return `payload too large: ${article} ${this.subject} of workflow type '${this.workflowType}' is ${this.bytes} bytes as JSON, over the limit of ${this.limit}`
  }
}

/**
 * A workflow's own function (`decide`, `evolve`, `isTerminal`, `workflowId`,
 * `uniqueKey`, `cancel`) threw. Nothing is written for the input; a routed effect or a
 * timer counts it as a failed attempt.
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkflowFunctionError
  extends Schema.TaggedError<WorkflowFunctionError>("ironflow/WorkflowFunctionError")("WorkflowFunctionError", {
    workflowType: Schema.String,
    /** Absent when `workflowId` itself threw. */
    workflowId: Schema.optional(Schema.String),
    function: Schema.Literal("decide", "evolve", "isTerminal", "workflowId", "uniqueKey", "cancel"),
    cause: Schema.Defect
  })
{
  override get message(): string {
    const where = this.workflowId === undefined ? `'${this.workflowType}'` : `${this.workflowType}:${this.workflowId}`
    return `${this.function} of workflow ${where} threw: ${describeCause(this.cause)}`
  }
}

/**
 * A value the database cannot store as given: text with a NUL character or
 * that is not well-formed Unicode (ids, keys, payloads), JSON nested too
 * deep, or a timer delay that is infinite or past the representable range.
 * Refused before anything is written.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnstorableValue extends Schema.TaggedError<UnstorableValue>("ironflow/UnstorableValue")(
  "UnstorableValue",
  {
    workflowType: Schema.String,
    subject: Schema.Literal(
      "workflow id",
      "unique key",
      "input",
      "event",
      "effect",
      "state",
      "rejection",
      "timer input",
      "timer key",
      "timer delay"
    ),
    detail: Schema.String
  }
) {
  override get message(): string {
    return `cannot store the ${this.subject} of workflow type '${this.workflowType}': ${this.detail}`
  }
}

/**
 * The workflow type is not registered in this process.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownWorkflowType extends Schema.TaggedError<UnknownWorkflowType>("ironflow/UnknownWorkflowType")(
  "UnknownWorkflowType",
  { workflowType: Schema.String }
) {
  override get message(): string {
    return `unknown workflow type: ${this.workflowType}`
  }
}

/**
 * Two registrations used the same workflow type.
 *
 * @since 0.1.0
 * @category errors
 */
export class DuplicateWorkflowType extends Schema.TaggedError<DuplicateWorkflowType>("ironflow/DuplicateWorkflowType")(
  "DuplicateWorkflowType",
  { workflowType: Schema.String }
) {
  override get message(): string {
    return `duplicate workflow type registration: ${this.workflowType}`
  }
}

/**
 * A new instance's unique key is held by another active (not completed)
 * instance of the same workflow type.
 *
 * @since 0.1.0
 * @category errors
 */
export class UniqueKeyConflict extends Schema.TaggedError<UniqueKeyConflict>("ironflow/UniqueKeyConflict")(
  "UniqueKeyConflict",
  { workflowType: Schema.String, uniqueKey: Schema.String }
) {
  override get message(): string {
    return `unique key conflict: workflow type '${this.workflowType}' already has an active instance with key '${this.uniqueKey}'`
  }
}

/**
 * A workflow definition is misconfigured (for example a workflow id field that
 * does not exist on an input variant). Thrown by `Workflow.make` when the
 * workflow is defined, the way a compile error would be.
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkflowDefinitionError extends Data.TaggedError("WorkflowDefinitionError")<{
  readonly workflowType: string
  readonly detail: string
}> {
  override get message(): string {
    return `invalid definition of workflow type '${this.workflowType}': ${this.detail}`
  }
}

/**
 * An attempt of a handler ran past its timeout (`HandlerOptions.timeout`, or
 * the runtime's `handlerTimeout`) and was interrupted: a failed attempt,
 * stored with this message as `last_error`.
 *
 * @since 0.1.0
 * @category errors
 */
export class HandlerTimeout extends Schema.TaggedError<HandlerTimeout>("ironflow/HandlerTimeout")("HandlerTimeout", {
  workflowType: Schema.String,
  /** The timeout, in milliseconds. */
  timeoutMillis: Schema.Number
}) {
  override get message(): string {
    return `timed out after ${readable(this.timeoutMillis)}`
  }
}

/**
 * `WorkflowService.cancel` on a workflow that cannot be cancelled from
 * outside: it declares no `cancel` input, or the input it builds belongs to
 * another instance. Nothing is written.
 *
 * @since 0.1.0
 * @category errors
 */
export class CancelNotSupported extends Schema.TaggedError<CancelNotSupported>("ironflow/CancelNotSupported")(
  "CancelNotSupported",
  { workflowType: Schema.String, workflowId: Schema.String, detail: Schema.String }
) {
  override get message(): string {
    return `cannot cancel ${this.workflowType}:${this.workflowId}: ${this.detail}`
  }
}

/**
 * Every failure of `WorkflowService.execute` and `executeDynamic`.
 *
 * @since 0.1.0
 * @category models
 */
export type ExecuteError =
  | StoreError
  | SerializationError
  | EventDeserializationError
  | UnknownEventVersion
  | PayloadTooLarge
  | UnknownWorkflowType
  | UniqueKeyConflict
  | WorkflowFunctionError
  | UnstorableValue

const describeCause = (cause: unknown): string => {
  if (cause instanceof Error) {
    const inner = (cause as { cause?: unknown }).cause
    return inner instanceof Error && inner.message !== cause.message
      ? `${cause.message}: ${inner.message}`
      : cause.message
  }
  return String(cause)
}
