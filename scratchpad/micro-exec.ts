import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted, Schema } from "effect"
import * as Decision from "ironflow/Decision"
import * as PgWorkflowStore from "ironflow/PgWorkflowStore"
import * as Workflow from "ironflow/Workflow"
import * as WorkflowRegistry from "ironflow/WorkflowRegistry"
import * as WorkflowService from "ironflow/WorkflowService"

class Inc extends Schema.TaggedClass<Inc>()("Inc", { id: Schema.String }) {}
class Incd extends Schema.TaggedClass<Incd>()("Incd", {}) {}
const W = Workflow.make({
  type: "micro", state: Schema.Struct({ n: Schema.Number }), input: Inc, event: Incd,
  initialState: { n: 0 }, workflowId: { field: "id" }, evolve: (s) => ({ n: s.n + 1 }),
  decide: () => Decision.accept(new Incd())
})
const db = process.argv[2]
const program = Effect.gen(function*() {
  const service = yield* WorkflowService.WorkflowService
  for (let i = 0; i < 50; i++) yield* service.execute(W, new Inc({ id: `warm-${i}` }))
  const n = 400
  let t = performance.now()
  for (let i = 0; i < n; i++) yield* service.execute(W, new Inc({ id: `s-${i % 50}` }))
  const seq = (performance.now() - t) / n
  t = performance.now()
  yield* Effect.forEach(Array.from({ length: 2000 }, (_, i) => i), (i) => service.execute(W, new Inc({ id: `c-${i}` })), { concurrency: 40 })
  const conc = 2000 / ((performance.now() - t) / 1000)
  console.log(JSON.stringify({ sequentialMsPerExecute: seq.toFixed(3), concurrentExecutesPerSec: Math.round(conc) }))
})
const layer = WorkflowService.layer.pipe(
  Layer.provide(WorkflowRegistry.layer([W.handler(() => Effect.succeedNone)])),
  Layer.provideMerge(PgWorkflowStore.layer),
  Layer.provide(PgClient.layer({ url: Redacted.make(`postgres://postgres@127.0.0.1:5432/${db}`), maxConnections: 10 }))
)
Effect.runPromise(Effect.provide(program, layer) as any).then(() => process.exit(0))
