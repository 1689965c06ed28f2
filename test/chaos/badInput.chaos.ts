/**
 * Bad input, each case giving a clear typed error or a dead letter with a
 * readable `last_error`, while a background flow of ordinary instances keeps
 * running through the same runtime and must complete: corrupt JSON shapes in
 * the outbox, timers and events; rows of unregistered workflow types (left
 * pending and visible, as ironflow 0.6.0 does); inputs that fail their
 * Schema; oversized payloads (`maxPayloadBytes` → `PayloadTooLarge`); workflow
 * ids with quotes, unicode and SQL metacharacters.
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Duration, Effect, Either, Fiber, Layer, Logger, LogLevel, Option, Schema } from "effect"
import type { WorkflowError } from "ironflow"
import { Decision, ExecuteOutcome, TestRuntime, Workflow, WorkflowService, WorkflowStore } from "ironflow"
import { ChaosDatabase, pgOn, report } from "./support.js"

class Start extends Schema.TaggedClass<Start>()("Start", { id: Schema.String, note: Schema.String }) {}
class Pong extends Schema.TaggedClass<Pong>()("Pong", { id: Schema.String, pad: Schema.String }) {}
class Finish extends Schema.TaggedClass<Finish>()("Finish", { id: Schema.String }) {}
class Grow extends Schema.TaggedClass<Grow>()("Grow", {
  id: Schema.String,
  target: Schema.Literal("event", "effect", "timer", "result"),
  bytes: Schema.Number
}) {}
class Started extends Schema.TaggedClass<Started>()("Started", { note: Schema.String }) {}
class Ponged extends Schema.TaggedClass<Ponged>()("Ponged", {}) {}
class Finished extends Schema.TaggedClass<Finished>()("Finished", {}) {}
class Grown extends Schema.TaggedClass<Grown>()("Grown", { pad: Schema.String }) {}
class Ping extends Schema.TaggedClass<Ping>()("Ping", { id: Schema.String }) {}
class Bulky extends Schema.TaggedClass<Bulky>()("Bulky", { id: Schema.String, pad: Schema.String }) {}
class Echo extends Schema.TaggedClass<Echo>()("Echo", { id: Schema.String, bytes: Schema.Number }) {}

const Flow = Workflow.make({
  type: "flow",
  state: Schema.Struct({ started: Schema.Boolean, ponged: Schema.Boolean, finished: Schema.Boolean }),
  input: Schema.Union(Start, Pong, Finish, Grow),
  event: Schema.Union(Started, Ponged, Finished, Grown),
  effect: Schema.Union(Ping, Bulky, Echo),
  rejection: Schema.String,
  initialState: { started: false, ponged: false, finished: false },
  workflowId: { field: "id" },
  evolve: (state, event) => {
    switch (event._tag) {
      case "Started":
        return { ...state, started: true }
      case "Ponged":
        return { ...state, ponged: true }
      case "Finished":
        return { ...state, finished: true }
      case "Grown":
        return state
    }
  },
  decide: (_now, state, input) => {
    switch (input._tag) {
      case "Start":
        return state.started
          ? Decision.reject("already started")
          : Decision.accept(new Started({ note: input.note })).pipe(Decision.withEffect(new Ping({ id: input.id })))
      case "Pong":
        if (!state.started) return Decision.reject("not started")
        if (state.ponged) return Decision.reject("already ponged")
        return Decision.accept(new Ponged()).pipe(
          Decision.withTimerAfter("20 millis", new Finish({ id: input.id }), { key: "finish" })
        )
      case "Finish":
        return state.ponged ? Decision.accept(new Finished()) : Decision.reject("not ponged yet")
      case "Grow": {
        const pad = "x".repeat(input.bytes)
        switch (input.target) {
          case "event":
            return Decision.accept(new Grown({ pad }))
          case "effect":
            return Decision.accept(new Grown({ pad: "" })).pipe(Decision.withEffect(new Bulky({ id: input.id, pad })))
          case "timer":
            return Decision.accept(new Grown({ pad: "" })).pipe(
              Decision.withTimerAfter("1 hour", new Pong({ id: input.id, pad }), { key: "big" })
            )
          case "result":
            return Decision.accept(new Grown({ pad: "" })).pipe(
              Decision.withEffect(new Echo({ id: input.id, bytes: input.bytes }))
            )
        }
      }
    }
  },
  isTerminal: (state) => state.finished
})

const FlowHandler = Flow.handler((effect) =>
  Effect.succeed(
    effect._tag === "Ping"
      ? Option.some(new Pong({ id: effect.id, pad: "" }))
      : effect._tag === "Echo"
      ? Option.some(new Pong({ id: effect.id, pad: "y".repeat(effect.bytes) }))
      : Option.none()
  )
)

const maxPayloadBytes = 4096

const Env = Layer.unwrapEffect(
  Effect.map(ChaosDatabase, ({ url }) =>
    Layer.merge(
      TestRuntime.layer({
        handlers: [FlowHandler],
        database: pgOn(url),
        serviceConfig: { maxPayloadBytes },
        config: { effectPollInterval: "20 millis", timerPollInterval: "50 millis" }
      }),
      pgOn(url, 2)
    ))
).pipe(Layer.provideMerge(ChaosDatabase.layer), Layer.provide(Logger.minimumLogLevel(LogLevel.Error)))

/** Ordinary instances started now; the returned effect waits until they all completed. */
const background = (prefix: string, count = 40) =>
  Effect.gen(function*() {
    const service = yield* WorkflowService.WorkflowService
    const ids = Array.from({ length: count }, (_, i) => `${prefix}-${i}`)
    const fiber = yield* Effect.forEach(ids, (id) => service.execute(Flow, new Start({ id, note: "ok" })), {
      concurrency: 4,
      discard: true
    }).pipe(Effect.fork)
    return Effect.gen(function*() {
      yield* Fiber.join(fiber)
      yield* Effect.forEach(ids, (id) => TestRuntime.awaitTerminal(Flow, id, { timeout: "60 seconds" }), {
        discard: true
      })
      return ids.length
    })
  })

/** A readable last_error: present, mentions every fragment, no "[object Object]". */
const assertReadable = (lastError: Option.Option<string>, ...fragments: ReadonlyArray<string>) => {
  assert.isTrue(Option.isSome(lastError), "last_error is set")
  const text = Option.getOrElse(lastError, () => "")
  assert.notInclude(text, "[object Object]")
  for (const fragment of fragments) assert.include(text, fragment)
  return text.split("\n")[0]
}

const insertEffect = (workflowType: string, workflowId: string, payload: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ id: string }>`
      INSERT INTO ironflow.outbox (id, workflow_type, workflow_id, payload, created_at)
      VALUES (gen_random_uuid(), ${workflowType}, ${workflowId}, ${payload}::jsonb, now()) RETURNING id::text AS id`
      .pipe(Effect.map(([row]) => row.id)))

const insertTimer = (workflowType: string, workflowId: string, input: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ id: string }>`
      INSERT INTO ironflow.timers (id, workflow_type, workflow_id, fire_at, input, created_at)
      VALUES (gen_random_uuid(), ${workflowType}, ${workflowId}, now(), ${input}::jsonb, now()) RETURNING id::text AS id`
      .pipe(Effect.map(([row]) => row.id)))

const deadLetter = (kind: WorkflowStore.QueueKind, id: string) =>
  Effect.gen(function*() {
    const store = yield* WorkflowStore.WorkflowStore
    yield* TestRuntime.awaitCondition(
      Effect.map(store.fetchDeadLetters(kind, { limit: 1000 }), (letters) => letters.some((l) => l.id === id)),
      { timeout: "30 seconds", description: `${kind} ${id} to be dead-lettered` }
    )
    const letters = yield* store.fetchDeadLetters(kind, { limit: 1000 })
    return letters.find((l) => l.id === id)!
  })

const countRows = (table: "events" | "outbox" | "timers" | "workflow_instances", workflowId: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ n: string }>`SELECT count(*)::text AS n FROM ${sql(`ironflow.${table}`)} WHERE workflow_id = ${workflowId}`
        .pipe(Effect.map(([row]) => Number(row.n)))
  )

layer(Env, { excludeTestServices: true, timeout: "120 seconds" })("bad input", (it) => {
  describe("corrupt rows", () => {
    it.effect("corrupt effect payloads in the outbox become dead letters with a readable last_error", () =>
      Effect.gen(function*() {
        const flowing = yield* background("bg-outbox")
        const shapes = [
          `{"type": "Teleport", "id": "x"}`,
          `{"type": "Ping"}`,
          `{"type": "Ping", "id": 42}`,
          `"just a string"`,
          `[1, 2, 3]`,
          `null`,
          `{"id": "no type"}`
        ]
        const ids = yield* Effect.forEach(shapes, (shape, i) => insertEffect("flow", `corrupt-effect-${i}`, shape))
        const letters = yield* Effect.forEach(ids, (id) => deadLetter("effect", id))
        const samples = letters.map((letter) =>
          assertReadable(letter.lastError, "serialization error", "cannot decode effect of workflow type 'flow'")
        )
        const completed = yield* flowing
        yield* report("badInput.corruptOutbox", {
          corruptRows: shapes.length,
          deadLettered: letters.length,
          attemptsEach: letters[0].attempts,
          backgroundCompleted: completed,
          sampleLastError: samples[1]
        })
      }))

    it.effect("corrupt timer inputs become dead letters with a readable last_error", () =>
      Effect.gen(function*() {
        const flowing = yield* background("bg-timers")
        const shapes = [`{"type": "Finish"}`, `{"type": "Warp", "id": "t"}`, `42`, `{"type": "Finish", "id": null}`]
        const ids = yield* Effect.forEach(shapes, (shape, i) => insertTimer("flow", `corrupt-timer-${i}`, shape))
        const letters = yield* Effect.forEach(ids, (id) => deadLetter("timer", id))
        const samples = letters.map((letter) =>
          assertReadable(
            letter.lastError,
            "Failed to execute timer input",
            "cannot decode input of workflow type 'flow'"
          )
        )
        const completed = yield* flowing
        yield* report("badInput.corruptTimers", {
          corruptRows: shapes.length,
          deadLettered: letters.length,
          backgroundCompleted: completed,
          sampleLastError: samples[0]
        })
      }))

    it.effect("corrupt events: a typed EventDeserializationError naming the sequence; routed work dead-letters", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const service = yield* WorkflowService.WorkflowService
        const flowing = yield* background("bg-events")
        const shapes = [
          `{"type": "Teleported"}`,
          `{"type": "Started"}`,
          `"a string"`,
          `[1]`,
          `{"type": "Started", "note": 42}`
        ]
        const ids = shapes.map((_, i) => `broken-events-${i}`)
        for (const [i, shape] of shapes.entries()) {
          yield* sql`INSERT INTO ironflow.workflow_instances (workflow_type, workflow_id, event_count)
            VALUES ('flow', ${ids[i]}, 2)`
          yield* sql`INSERT INTO ironflow.events (workflow_type, workflow_id, sequence, payload) VALUES
            ('flow', ${ids[i]}, 1, '{"type": "Started", "note": "fine"}'::jsonb),
            ('flow', ${ids[i]}, 2, ${shape}::jsonb)`
        }
        for (const id of ids) {
          const executed = yield* Effect.either(service.execute(Flow, new Pong({ id, pad: "" })))
          assert.isTrue(Either.isLeft(executed))
          const error = Either.getLeft(executed).pipe(Option.getOrThrow)
          assert.strictEqual(error._tag, "EventDeserializationError")
          if (error._tag === "EventDeserializationError") {
            assert.strictEqual(error.sequence, 2)
            assert.strictEqual(error.workflowId, id)
            assert.include(error.message, `at sequence 2 for flow:${id}`)
          }
          const state = yield* Effect.either(service.fetchLatestState(Flow, id))
          assert.isTrue(Either.isLeft(state) && state.left._tag === "EventDeserializationError")
          assert.strictEqual(yield* countRows("events", id), 2, "nothing written")
        }
        // Work routed to the broken instance: a result and a timer, both dead letters naming the event.
        const effectId = yield* insertEffect("flow", ids[0], `{"type": "Ping", "id": "${ids[0]}"}`)
        const timerId = yield* insertTimer("flow", ids[0], `{"type": "Finish", "id": "${ids[0]}"}`)
        const effectLetter = yield* deadLetter("effect", effectId)
        const timerLetter = yield* deadLetter("timer", timerId)
        const effectError = assertReadable(
          effectLetter.lastError,
          "Failed to route result",
          `failed to deserialize event at sequence 2 for flow:${ids[0]}`
        )
        const timerError = assertReadable(
          timerLetter.lastError,
          "Failed to execute timer input",
          `failed to deserialize event at sequence 2 for flow:${ids[0]}`
        )
        const completed = yield* flowing
        yield* report("badInput.corruptEvents", {
          corruptInstances: ids.length,
          typedErrors: ids.length,
          routedWorkDeadLettered: 2,
          backgroundCompleted: completed,
          effectLastError: effectError,
          timerLastError: timerError
        })
      }))

    it.effect("rows of an unregistered workflow type are left pending and visible, never claimed", () =>
      Effect.gen(function*() {
        const store = yield* WorkflowStore.WorkflowStore
        const service = yield* WorkflowService.WorkflowService
        const flowing = yield* background("bg-ghost")
        const effectId = yield* insertEffect("ghost", "g-1", `{"type": "Haunt", "id": "g-1"}`)
        const timerId = yield* insertTimer("ghost", "g-1", `{"type": "Boo", "id": "g-1"}`)
        const unknown = yield* Effect.either(service.executeDynamic("ghost", { type: "Boo", id: "g-1" }))
        assert.isTrue(Either.isLeft(unknown) && unknown.left._tag === "UnknownWorkflowType")
        const completed = yield* flowing
        yield* Effect.sleep(Duration.millis(300)) // several poll rounds of every worker
        const pending = yield* store.fetchPending("ghost", "g-1")
        assert.deepStrictEqual(pending.map((p) => p.id).sort(), [effectId, timerId].sort())
        for (const item of pending) {
          assert.strictEqual(item.attempts, 0)
          assert.isTrue(Option.isNone(item.lockedBy), "never claimed")
          assert.isTrue(Option.isNone(item.lastError))
        }
        const stats = (yield* store.queueStats).filter((s) => s.workflowType === "ghost")
        assert.deepStrictEqual(stats.map((s) => [s.kind, s.pending, s.ready, s.deadLetters]).sort(), [
          ["effect", 1, 1, 0],
          ["timer", 1, 1, 0]
        ])
        yield* report("badInput.unregisteredType", {
          rowsOfUnregisteredType: 2,
          leftPending: pending.length,
          claimed: 0,
          visibleInQueueStats: stats.length,
          backgroundCompleted: completed,
          executeDynamicError: Either.isLeft(unknown) ? unknown.left.message : ""
        })
      }))
  })

  describe("bad inputs", () => {
    it.effect("inputs that fail their Schema are a SerializationError and write nothing", () =>
      Effect.gen(function*() {
        const service = yield* WorkflowService.WorkflowService
        const flowing = yield* background("bg-schema")
        const inputs: ReadonlyArray<unknown> = [
          { type: "Start", id: "schema-1" },
          { type: "Start", id: 7, note: "x" },
          { type: "Launch", id: "schema-3" },
          { id: "schema-4", note: "no type" },
          "Start",
          null,
          [{ type: "Start", id: "schema-7", note: "x" }],
          { type: "Grow", id: "schema-8", target: "everything", bytes: 1 }
        ]
        const messages: Array<string> = []
        for (const input of inputs) {
          const result = yield* Effect.either(service.executeDynamic("flow", input))
          assert.isTrue(Either.isLeft(result), `rejected: ${JSON.stringify(input)}`)
          const error = Either.getLeft(result).pipe(Option.getOrThrow)
          assert.strictEqual(error._tag, "SerializationError")
          if (error._tag === "SerializationError") {
            assert.strictEqual(error.subject, "input")
            assert.strictEqual(error.direction, "decode")
            assert.include(error.message, "cannot decode input of workflow type 'flow'")
          }
          messages.push(error.message.split("\n")[0])
        }
        for (const id of ["schema-1", "schema-3", "schema-4", "schema-7", "schema-8"]) {
          assert.strictEqual(yield* countRows("workflow_instances", id), 0)
        }
        const completed = yield* flowing
        yield* report("badInput.schemaFailures", {
          badInputs: inputs.length,
          serializationErrors: messages.length,
          backgroundCompleted: completed,
          sampleError: messages[0]
        })
      }))

    it.effect("oversized payloads fail with PayloadTooLarge (input, event, effect, timer input) and write nothing", () =>
      Effect.gen(function*() {
        const service = yield* WorkflowService.WorkflowService
        const flowing = yield* background("bg-size")
        const big = maxPayloadBytes + 100
        // Just under the cap works.
        assert.isTrue(
          ExecuteOutcome.isAccepted(
            yield* service.execute(Flow, new Start({ id: "size-ok", note: "n".repeat(maxPayloadBytes - 200) }))
          )
        )
        // Every case is checked, then all problems are reported together.
        const problems: Array<string> = []
        const tooLarge = (
          label: string,
          self: Effect.Effect<unknown, WorkflowError.ExecuteError>,
          subject: string,
          id: string
        ) =>
          Effect.gen(function*() {
            const result = yield* Effect.either(self)
            if (Either.isRight(result)) {
              problems.push(
                `${label}: succeeded (${JSON.stringify(result.right)}), expected PayloadTooLarge(${subject})`
              )
            } else if (result.left._tag !== "PayloadTooLarge") {
              problems.push(`${label}: failed with ${result.left._tag}, expected PayloadTooLarge(${subject})`)
            } else if (
              result.left.subject !== subject || result.left.limit !== maxPayloadBytes ||
              result.left.bytes <= maxPayloadBytes
            ) {
              problems.push(`${label}: ${result.left.message}, expected subject ${subject}`)
            }
            const rows = [
              yield* countRows("workflow_instances", id),
              yield* countRows("events", id),
              yield* countRows("outbox", id),
              yield* countRows("timers", id)
            ]
            if (rows.some((n) => n > 0)) {
              problems.push(`${label}: wrote rows (instances, events, effects, timers) = ${rows}, expected none`)
            }
            return Either.isLeft(result) ? result.left.message : "accepted"
          })
        const messages = [
          yield* tooLarge(
            "typed execute of a large input",
            service.execute(Flow, new Start({ id: "size-1", note: "n".repeat(big) })),
            "input",
            "size-1"
          ),
          yield* tooLarge(
            "executeDynamic of a large input",
            service.executeDynamic("flow", { type: "Start", id: "size-2", note: "n".repeat(big) }),
            "input",
            "size-2"
          )
        ]
        for (const [target, subject] of [["event", "event"], ["effect", "effect"], ["timer", "timer input"]] as const) {
          messages.push(
            yield* tooLarge(
              `a decision with a large ${target}`,
              service.execute(Flow, new Grow({ id: `size-3-${target}`, target, bytes: big })),
              subject,
              `size-3-${target}`
            )
          )
        }
        // A handler whose result is too large: the routing fails, retried, then a readable dead letter.
        yield* service.execute(Flow, new Grow({ id: "size-4b", target: "result", bytes: big }))
        const store = yield* WorkflowStore.WorkflowStore
        const dead = yield* TestRuntime.awaitCondition(
          Effect.map(store.fetchDeadLetters("effect", { workflowId: "size-4b" }), (l) => l.length > 0),
          { timeout: "10 seconds", description: "the oversized result to be dead-lettered" }
        ).pipe(Effect.either)
        let routed = ""
        if (Either.isLeft(dead)) {
          const events = yield* service.fetchWorkflowEvents("flow", "size-4b")
          problems.push(
            `a handler result over the cap: not dead-lettered; events ${
              JSON.stringify(events.map((e) => (e.payload as { type: string }).type))
            }`
          )
        } else {
          const [letter] = yield* store.fetchDeadLetters("effect", { workflowId: "size-4b" })
          routed = Option.getOrElse(letter.lastError, () => "").split("\n")[0]
          if (!routed.includes("Failed to route result") || !routed.includes("payload too large")) {
            problems.push(`a handler result over the cap: last_error ${JSON.stringify(routed)}`)
          }
        }
        const completed = yield* flowing
        yield* report("badInput.oversizedPayloads", {
          maxPayloadBytes,
          oversizedCases: messages.length + 1,
          payloadTooLargeErrors: messages.filter((m) => m.startsWith("payload too large")).length,
          oversizedResultDeadLettered: routed.includes("payload too large"),
          problems: problems.length,
          backgroundCompleted: completed,
          sampleError: messages[1],
          routedResultLastError: routed
        })
        assert.deepStrictEqual(problems, [], problems.join("\n"))
      }))

    it.effect("workflow ids with quotes, unicode and SQL metacharacters run through effects and timers", () =>
      Effect.gen(function*() {
        const service = yield* WorkflowService.WorkflowService
        const flowing = yield* background("bg-ids")
        const ids = [
          "it's",
          "\"double\" quotes",
          "back\\slash\\\\",
          "semi; DROP TABLE ironflow.events; --",
          "{a,b}",
          "{\"json\": true}",
          "%_ like wildcards",
          "$1 $2 ?",
          "ünïcødé",
          "🚀 emoji 👩‍👩‍👧",
          "日本語のワークフロー",
          "new\nline\ttab\r",
          "   spaces   ",
          "NULL",
          "x".repeat(1000),
          "a/b?c=d&e#f",
          "' OR '1'='1"
        ]
        yield* Effect.forEach(ids, (id) => service.execute(Flow, new Start({ id, note: id })), { concurrency: 4 })
        yield* Effect.forEach(ids, (id) => TestRuntime.awaitTerminal(Flow, id, { timeout: "30 seconds" }), {
          discard: true
        })
        for (const id of ids) {
          const events = yield* service.fetchWorkflowEvents("flow", id)
          assert.deepStrictEqual(events.map((e) => (e.payload as { type: string }).type), [
            "Started",
            "Ponged",
            "Finished"
          ])
          assert.strictEqual(events[0].workflowId, id)
          assert.deepStrictEqual(events[0].payload, { type: "Started", note: id })
        }
        const listed = new Set((yield* service.listWorkflows("flow", 10_000)).map((w) => w.workflowId))
        for (const id of ids) assert.isTrue(listed.has(id), `listed: ${JSON.stringify(id)}`)
        // PostgreSQL text cannot hold NUL: a typed failure (never a defect), nothing written, the rest flows.
        const nul = yield* Effect.either(service.execute(Flow, new Start({ id: "nul\u0000byte", note: "x" })))
        assert.isTrue(Either.isLeft(nul))
        const nulInPayload = yield* Effect.either(
          service.execute(Flow, new Start({ id: "nul-note", note: "a\u0000b" }))
        )
        assert.isTrue(Either.isLeft(nulInPayload))
        assert.strictEqual(yield* countRows("workflow_instances", "nul-note"), 0)
        const completed = yield* flowing
        yield* report("badInput.weirdIds", {
          ids: ids.length,
          completed: ids.length,
          nulIdError: Either.isLeft(nul) ? nul.left.message : "none",
          nulPayloadError: Either.isLeft(nulInPayload) ? nulInPayload.left.message : "none",
          backgroundCompleted: completed
        })
      }))
  })
})
