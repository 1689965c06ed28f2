import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Schema } from "effect"
import {
  Decision,
  ExecuteOutcome,
  PgliteClient,
  PgWorkflowStore,
  Workflow,
  WorkflowRegistry,
  WorkflowService
} from "ironflow"

class Add extends Schema.TaggedClass<Add>()("Add", { counterId: Schema.String, amount: Schema.Number }) {}
class Close extends Schema.TaggedClass<Close>()("Close", { counterId: Schema.String }) {}
class Added extends Schema.TaggedClass<Added>()("Added", { amount: Schema.Number }) {}
class Closed extends Schema.TaggedClass<Closed>()("Closed", {}) {}

const Counter = Workflow.make({
  type: "counter",
  state: Schema.Struct({ total: Schema.Number, closed: Schema.Boolean }),
  input: Schema.Union(Add, Close),
  event: Schema.Union(Added, Closed),
  rejection: Schema.String,
  initialState: { total: 0, closed: false },
  workflowId: { field: "counterId" },
  evolve: (state, event) =>
    event._tag === "Added" ? { ...state, total: state.total + event.amount } : { ...state, closed: true },
  decide: (_now, _state, input) => {
    switch (input._tag) {
      case "Add":
        return input.amount <= 0
          ? Decision.reject("amount must be positive")
          : Decision.accept(new Added({ amount: input.amount }))
      case "Close":
        return Decision.accept(new Closed())
    }
  },
  isTerminal: (state) => state.closed
})

const program = Effect.gen(function*() {
  const service = yield* WorkflowService.WorkflowService
  yield* service.execute(Counter, new Add({ counterId: "c-1", amount: 2 }))
  yield* service.execute(Counter, new Add({ counterId: "c-1", amount: 3 }))
  const rejected = yield* service.execute(Counter, new Add({ counterId: "c-1", amount: -1 }))
  console.log(ExecuteOutcome.isRejected(rejected) ? `rejected: ${rejected.reason}` : rejected)
  yield* service.execute(Counter, new Close({ counterId: "c-1" }))
  console.log(yield* service.execute(Counter, new Add({ counterId: "c-1", amount: 1 }))) // AlreadyCompleted
  console.log("state:", yield* service.fetchLatestState(Counter, "c-1"))
  for (const event of yield* service.fetchWorkflowEvents("counter", "c-1")) {
    console.log(event.sequence, JSON.stringify(event.payload))
  }
})

const App = WorkflowService.layer.pipe(
  Layer.provide(WorkflowRegistry.layer([Counter])),
  Layer.provide(PgWorkflowStore.layer), // applies the migrations
  Layer.provide(PgliteClient.layer()) // in memory; PgClient.layer({ url }) for PostgreSQL
)

program.pipe(Effect.provide(App), NodeRuntime.runMain)
