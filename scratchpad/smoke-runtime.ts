import { NodeRuntime } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Option, Redacted, Schema } from "effect"
import {
  Decision,
  PgliteClient,
  PgWorkflowStore,
  RuntimeConfig,
  Workflow,
  WorkflowRegistry,
  WorkflowRuntime,
  WorkflowService
} from "ironflow"

class Start extends Schema.TaggedClass<Start>()("Start", { id: Schema.String }) {}
class Done extends Schema.TaggedClass<Done>()("Done", { id: Schema.String }) {}
class Tick extends Schema.TaggedClass<Tick>()("Tick", { id: Schema.String }) {}
class Started extends Schema.TaggedClass<Started>()("Started", {}) {}
class Finished extends Schema.TaggedClass<Finished>()("Finished", {}) {}
class Ticked extends Schema.TaggedClass<Ticked>()("Ticked", {}) {}
class Work extends Schema.TaggedClass<Work>()("Work", { id: Schema.String }) {}

const W = Workflow.make({
  type: "smoke",
  state: Schema.Struct({ done: Schema.Boolean, ticks: Schema.Number }),
  input: Schema.Union(Start, Done, Tick),
  event: Schema.Union(Started, Finished, Ticked),
  effect: Work,
  initialState: { done: false, ticks: 0 },
  workflowId: { field: "id" },
  evolve: (s, e) =>
    e._tag === "Finished" ? { ...s, done: true } : e._tag === "Ticked" ? { ...s, ticks: s.ticks + 1 } : s,
  decide: (_now, s, i) => {
    switch (i._tag) {
      case "Start":
        return Decision.accept(new Started()).pipe(
          Decision.withEffect(new Work({ id: i.id })),
          Decision.withTimerAfter("200 millis", new Tick({ id: i.id }), { key: "t" })
        )
      case "Tick":
        return Decision.accept(new Ticked())
      case "Done":
        return Decision.accept(new Finished())
    }
  },
  isTerminal: (s) => s.done && s.ticks > 0
})
const H = W.handler((effect) => Effect.succeed(Option.some(new Done({ id: effect.id }))))

const db = process.env.PGLITE
  ? PgliteClient.layer()
  : PgClient.layer({ url: Redacted.make("postgres://postgres@127.0.0.1:5432/test") })
const program = Effect.gen(function*() {
  const svc = yield* WorkflowService.WorkflowService
  const t0 = Date.now()
  const N = 200
  yield* Effect.forEach(
    Array.from({ length: N }, (_, i) => `w${Date.now()}-${i}`),
    (id) => svc.execute(W, new Start({ id })),
    { concurrency: 10 }
  )
  while (true) {
    const list = yield* svc.listWorkflows("smoke", 100000)
    const done = list.filter((x) => Option.isSome(x.completedAt)).length
    if (done >= N) break
    yield* Effect.sleep("20 millis")
  }
  console.log("done", N, "in", Date.now() - t0, "ms")
})
program.pipe(
  Effect.provide(WorkflowRuntime.layer.pipe(
    Layer.provide(WorkflowRegistry.layer([H])),
    Layer.provide(RuntimeConfig.layer({ timerPollInterval: "100 millis" })),
    Layer.provide(PgWorkflowStore.layer),
    Layer.provide(db)
  )),
  NodeRuntime.runMain
)
