/**
 * The console's HTTP API, typed by Schemas: what `Console.layer` serves, as
 * JSON under `/api`, the Prometheus text under `/metrics`, and the HTML pages
 * an operator opens in a browser. Derive a client with `HttpApiClient.make`
 * or an OpenAPI document with `OpenApi.fromApi`.
 *
 * @since 0.1.0
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category schemas
 */
export const Kind = Schema.Literal("effect", "timer")

/**
 * One workflow type on the overview: its instances and its queues.
 *
 * @since 0.1.0
 * @category schemas
 */
export class TypeOverview extends Schema.Class<TypeOverview>("ironflow/ConsoleApi/TypeOverview")({
  workflowType: Schema.String,
  activeInstances: Schema.Number,
  completedInstances: Schema.Number,
  pendingEffects: Schema.Number,
  readyEffects: Schema.Number,
  pendingTimers: Schema.Number,
  dueTimers: Schema.Number,
  expiredLeases: Schema.Number,
  longRunning: Schema.Number,
  deadLetters: Schema.Number,
  timedOutAttempts: Schema.Number,
  runByLiveWorker: Schema.Boolean
}) {}

/**
 * A runtime whose announcement has not expired.
 *
 * @since 0.1.0
 * @category schemas
 */
export class LiveWorker extends Schema.Class<LiveWorker>("ironflow/ConsoleApi/LiveWorker")({
  workerId: Schema.String,
  host: Schema.String,
  pid: Schema.Number,
  workflowTypes: Schema.Array(Schema.String),
  startedAt: Schema.Date,
  heartbeatAt: Schema.Date,
  clockOffsetMillis: Schema.NullOr(Schema.Number),
  claimsPaused: Schema.NullOr(Schema.String)
}) {}

/**
 * @since 0.1.0
 * @category schemas
 */
export class ProjectionLag extends Schema.Class<ProjectionLag>("ironflow/ConsoleApi/ProjectionLag")({
  name: Schema.String,
  eventsBehind: Schema.Number,
  updatedAt: Schema.Date
}) {}

/**
 * @since 0.1.0
 * @category schemas
 */
export class ThroughputMinute extends Schema.Class<ThroughputMinute>("ironflow/ConsoleApi/ThroughputMinute")({
  minute: Schema.Date,
  effects: Schema.Number,
  timers: Schema.Number
}) {}

/**
 * @since 0.1.0
 * @category schemas
 */
export class Overview extends Schema.Class<Overview>("ironflow/ConsoleApi/Overview")({
  at: Schema.Date,
  types: Schema.Array(TypeOverview),
  liveWorkers: Schema.Array(LiveWorker),
  projections: Schema.Array(ProjectionLag),
  throughput: Schema.Array(ThroughputMinute)
}) {}

/**
 * @since 0.1.0
 * @category schemas
 */
export class Instance extends Schema.Class<Instance>("ironflow/ConsoleApi/Instance")({
  workflowType: Schema.String,
  workflowId: Schema.String,
  createdAt: Schema.Date,
  eventCount: Schema.Number,
  lastEventAt: Schema.NullOr(Schema.Date),
  completedAt: Schema.NullOr(Schema.Date)
}) {}

/**
 * @since 0.1.0
 * @category schemas
 */
export class InstancePage extends Schema.Class<InstancePage>("ironflow/ConsoleApi/InstancePage")({
  items: Schema.Array(Instance),
  limit: Schema.Number,
  offset: Schema.Number,
  /** Whether another page may follow. */
  more: Schema.Boolean
}) {}

/**
 * @since 0.1.0
 * @category schemas
 */
export class Event extends Schema.Class<Event>("ironflow/ConsoleApi/Event")({
  sequence: Schema.Number,
  globalSequence: Schema.Number,
  version: Schema.Number,
  createdAt: Schema.Date,
  payload: Schema.Unknown
}) {}

/**
 * A pending effect or timer of an instance.
 *
 * @since 0.1.0
 * @category schemas
 */
export class PendingItem extends Schema.Class<PendingItem>("ironflow/ConsoleApi/PendingItem")({
  kind: Kind,
  id: Schema.String,
  dueAt: Schema.Date,
  attempts: Schema.Number,
  key: Schema.NullOr(Schema.String),
  lockedBy: Schema.NullOr(Schema.String),
  lockedUntil: Schema.NullOr(Schema.Date),
  lastError: Schema.NullOr(Schema.String),
  payload: Schema.Unknown
}) {}

/**
 * @since 0.1.0
 * @category schemas
 */
export class DeadLetter extends Schema.Class<DeadLetter>("ironflow/ConsoleApi/DeadLetter")({
  kind: Kind,
  id: Schema.String,
  workflowType: Schema.String,
  workflowId: Schema.String,
  attempts: Schema.Number,
  lastError: Schema.NullOr(Schema.String),
  createdAt: Schema.Date,
  deadLetteredAt: Schema.Date,
  payload: Schema.Unknown
}) {}

/**
 * An input the workflow observed, with how it ended (`accepted`, `rejected`, `already_completed`).
 *
 * @since 0.1.0
 * @category schemas
 */
export class Observation extends Schema.Class<Observation>("ironflow/ConsoleApi/Observation")({
  id: Schema.Number,
  inputType: Schema.String,
  outcome: Schema.String,
  rejection: Schema.Unknown,
  observedAt: Schema.Date,
  payload: Schema.Unknown
}) {}

/**
 * One instance in full. `state` is rebuilt with the application's workflow
 * definitions when the console has them (`stateSource: "definitions"`), else
 * null with `stateSource: "unavailable"` (or `"failed"` and `stateError`).
 *
 * @since 0.1.0
 * @category schemas
 */
export class InstanceDetail extends Schema.Class<InstanceDetail>("ironflow/ConsoleApi/InstanceDetail")({
  instance: Instance,
  state: Schema.Unknown,
  stateSource: Schema.Literal("definitions", "unavailable", "failed"),
  stateError: Schema.NullOr(Schema.String),
  status: Schema.NullOr(Schema.String),
  events: Schema.Array(Event),
  pending: Schema.Array(PendingItem),
  deadLetters: Schema.Array(DeadLetter),
  observations: Schema.Array(Observation)
}) {}

/**
 * @since 0.1.0
 * @category schemas
 */
export class DeadLetterPage extends Schema.Class<DeadLetterPage>("ironflow/ConsoleApi/DeadLetterPage")({
  total: Schema.Number,
  items: Schema.Array(DeadLetter),
  limit: Schema.Number,
  offset: Schema.Number
}) {}

/**
 * @since 0.1.0
 * @category schemas
 */
export const QueueRow = Schema.Struct({ kind: Kind, id: Schema.String })

/**
 * Retried: made runnable again. Not dead: unknown, processed, or pending (left alone).
 *
 * @since 0.1.0
 * @category schemas
 */
export class RetryResult extends Schema.Class<RetryResult>("ironflow/ConsoleApi/RetryResult")({
  retried: Schema.Array(QueueRow),
  notDead: Schema.Array(QueueRow)
}) {}

/**
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends Schema.TaggedError<NotFound>()(
  "NotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

/**
 * A write refused: the console is read-only, or the request lacks its CSRF token.
 *
 * @since 0.1.0
 * @category errors
 */
export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 403 })
) {}

/**
 * The database could not answer (it is down, or a query failed).
 *
 * @since 0.1.0
 * @category errors
 */
export class Unavailable extends Schema.TaggedError<Unavailable>()(
  "Unavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

const PageSize = Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 500))
const Offset = Schema.NumberFromString.pipe(Schema.int(), Schema.greaterThanOrEqualTo(0))

/**
 * The header a JSON write carries: the CSRF token the console prints in its
 * pages (`<meta name="csrf-token">`) and gives with `GET /api/session`.
 *
 * @since 0.1.0
 * @category constants
 */
export const csrfHeader = "x-ironflow-csrf"

/**
 * @since 0.1.0
 * @category groups
 */
export class JsonGroup extends HttpApiGroup.make("api")
  .add(HttpApiEndpoint.get("overview", "/api/overview").addSuccess(Overview))
  .add(
    HttpApiEndpoint.get("instances", "/api/instances")
      .setUrlParams(Schema.Struct({
        type: Schema.optional(Schema.String),
        prefix: Schema.optional(Schema.String),
        status: Schema.optional(Schema.Literal("active", "completed")),
        limit: Schema.optional(PageSize),
        offset: Schema.optional(Offset)
      }))
      .addSuccess(InstancePage)
  )
  .add(
    HttpApiEndpoint.get("instance", "/api/instance")
      .setUrlParams(Schema.Struct({ type: Schema.String, id: Schema.String }))
      .addSuccess(InstanceDetail)
      .addError(NotFound)
  )
  .add(
    HttpApiEndpoint.get("deadLetters", "/api/dead-letters")
      .setUrlParams(Schema.Struct({
        kind: Schema.optional(Kind),
        type: Schema.optional(Schema.String),
        id: Schema.optional(Schema.String),
        limit: Schema.optional(PageSize),
        offset: Schema.optional(Offset)
      }))
      .addSuccess(DeadLetterPage)
  )
  .add(
    HttpApiEndpoint.post("retry", "/api/dead-letters/retry")
      .setHeaders(Schema.Struct({ [csrfHeader]: Schema.String }))
      .setPayload(Schema.Struct({ items: Schema.Array(QueueRow).pipe(Schema.maxItems(500)) }))
      .addSuccess(RetryResult)
      .addError(Forbidden)
  )
  .add(
    HttpApiEndpoint.get("session", "/api/session")
      .addSuccess(Schema.Struct({ csrfToken: Schema.String, readOnly: Schema.Boolean }))
  )
  .add(
    HttpApiEndpoint.get("openapi", "/api/openapi.json")
      .addSuccess(Schema.Unknown)
      .annotate(OpenApi.Description, "This API as an OpenAPI 3.1 document, derived from its Schemas")
  )
  .add(
    HttpApiEndpoint.get("metrics", "/metrics")
      .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))
      .annotate(OpenApi.Description, "The runtime's metrics in the Prometheus text format")
  )
  .addError(Unavailable)
{}

/**
 * The HTML pages (server-rendered, no scripts).
 *
 * @since 0.1.0
 * @category groups
 */
export class PageGroup extends HttpApiGroup.make("pages")
  .add(HttpApiEndpoint.get("overview", "/").addSuccess(HttpApiSchema.Text({ contentType: "text/html" })))
  .add(HttpApiEndpoint.get("instances", "/instances").addSuccess(HttpApiSchema.Text({ contentType: "text/html" })))
  .add(HttpApiEndpoint.get("instance", "/instance").addSuccess(HttpApiSchema.Text({ contentType: "text/html" })))
  .add(
    HttpApiEndpoint.get("deadLetters", "/dead-letters").addSuccess(HttpApiSchema.Text({ contentType: "text/html" }))
  )
  .add(HttpApiEndpoint.post("retry", "/dead-letters/retry").addSuccess(HttpApiSchema.Empty(303)))
  .add(HttpApiEndpoint.get("login", "/login").addSuccess(HttpApiSchema.Text({ contentType: "text/html" })))
  .add(HttpApiEndpoint.post("signIn", "/login").addSuccess(HttpApiSchema.Empty(303)))
  .annotate(OpenApi.Exclude, true)
{}

/**
 * @since 0.1.0
 * @category api
 */
export class ConsoleApi extends HttpApi.make("ironflow-console").add(JsonGroup).add(PageGroup).annotate(
  OpenApi.Title,
  "ironflow console"
) {}
