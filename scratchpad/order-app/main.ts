/**
 * `npm start`: an order-fulfilment application on ironflow.
 *
 * It runs on the embedded PostgreSQL (PGlite) in `.ironflow/` (or
 * `IRONFLOW_DATA_DIR`), or on PostgreSQL when `DATABASE_URL` is set. It places
 * a few orders that exercise every path: payment retried after transient
 * failures, a shipping timer, a cancellation with a refund, a declined card,
 * rejected inputs, and a shipment that ends as a dead letter. Progress is
 * printed while it runs, then a summary. Run it twice: the data persists.
 * Ctrl+C drains the runtime gracefully.
 *
 * `npm run console` (this file with `--console`) does the same, then keeps
 * the runtime running with the web console in the application's Layer graph
 * (`Console.layerConfig`) on http://127.0.0.1:7420 until Ctrl+C: the
 * instances, their diagrams, the dead letter, and a retry that really runs.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Metric, Option, Schedule } from "effect"
import {
  Database,
  DeadLetters,
  ExecuteOutcome,
  PgWorkflowStore,
  RuntimeConfig,
  WorkflowRegistry,
  WorkflowRuntime,
  WorkflowService
} from "ironflow"
import * as IronflowConsole from "ironflow/Console"
import { OrderHandler } from "./OrderHandler.js"
import { type OrderId, OrderStateMachine, OrderWorkflow, PlaceOrder } from "./OrderWorkflow.js"
import { CarrierLive, PaymentGatewayLive } from "./services.js"

interface Scenario {
  readonly name: string
  readonly amount: number
  readonly address: string
  readonly story: string
  readonly cancelAfterPayment?: boolean
  readonly expectDeadLetter?: boolean
}

const scenarios: ReadonlyArray<Scenario> = [
  { name: "book", amount: 25, address: "1 Main Street", story: "paid, shipped after the shipping timer" },
  { name: "lamp", amount: 80, address: "2 Oak Avenue", story: "paid, shipped after the shipping timer" },
  { name: "chair", amount: 42.13, address: "3 Elm Road", story: "gateway timed out twice, retried, shipped" },
  { name: "car", amount: 12_500, address: "4 Pine Lane", story: "card declined, order cancelled" },
  {
    name: "desk",
    amount: 310,
    address: "5 Birch Way",
    story: "cancelled after payment, refunded",
    cancelAfterPayment: true
  },
  {
    name: "piano",
    amount: 990,
    address: "Nowhere 0",
    story: "carrier rejects the address: dead letter",
    expectDeadLetter: true
  }
]

/** Sum of a runtime counter over its tags, for one kind (effect or timer). */
const counter = (name: string, kind: string) =>
  Effect.map(Metric.snapshot, (pairs) =>
    pairs.reduce((total, pair) => {
      if (pair.metricKey.name !== name) return total
      if (!pair.metricKey.tags.some((tag) => tag.key === "kind" && tag.value === kind)) return total
      const state = pair.metricState as { readonly count?: number }
      return total + Number(state.count ?? 0)
    }, 0))

const pad = (value: string, width: number) => value.length >= width ? value : value + " ".repeat(width - value.length)

const program = Effect.gen(function*() {
  const service = yield* WorkflowService.WorkflowService
  const deadLetters = yield* DeadLetters.DeadLetters
  const where = Database.describe(yield* Database.config)

  const before = yield* service.listWorkflows(OrderWorkflow.type, 100_000)
  const previousRuns = new Set(before.map((order) => order.workflowId.split("-")[0]))
  const run = previousRuns.size + 1
  const orderId = (name: string) => `run${run}-${name}` as OrderId
  yield* Console.log(`ironflow example: order fulfilment on ${where}`)
  yield* Console.log(
    before.length === 0
      ? "The database is empty: this is the first run."
      : `The database already holds ${before.length} orders from ${previousRuns.size} earlier run(s); this is run ${run}.`
  )

  yield* Console.log(`\nPlacing ${scenarios.length} orders...`)
  for (const scenario of scenarios) {
    yield* service.execute(
      OrderWorkflow,
      new PlaceOrder({ orderId: orderId(scenario.name), amount: scenario.amount, address: scenario.address })
    )
  }
  const rejections = [
    new PlaceOrder({ orderId: orderId("book"), amount: 25, address: "1 Main Street" }),
    new PlaceOrder({ orderId: orderId("gift"), amount: 0, address: "6 Cedar Court" })
  ]
  for (const input of rejections) {
    const outcome = yield* service.execute(OrderWorkflow, input)
    if (ExecuteOutcome.isRejected(outcome)) {
      yield* Console.log(`  rejected ${input.orderId}: ${outcome.reason}`)
    }
  }

  // Cancel the desk once its payment is captured (before the shipping timer fires).
  const desk = scenarios.find((s) => s.cancelAfterPayment)!
  yield* Effect.gen(function*() {
    const state = yield* service.fetchLatestState(OrderWorkflow, orderId(desk.name))
    if (state.status === "placed") return yield* Effect.fail("not paid yet" as const)
    if (state.status === "paid") {
      yield* service.cancel(OrderWorkflow, orderId(desk.name), "customer changed mind")
    }
  }).pipe(Effect.retry(Schedule.spaced("20 millis")), Effect.timeout("30 seconds"), Effect.ignore)

  const ids = scenarios.map((s) => orderId(s.name))
  const progress = Effect.gen(function*() {
    const all = yield* service.listWorkflows(OrderWorkflow.type, 100_000)
    const mine = all.filter((order) => ids.includes(order.workflowId as OrderId))
    const completed = mine.filter((order) => Option.isSome(order.completedAt)).length
    const dead = yield* deadLetters.count({ workflowType: OrderWorkflow.type })
    const line = `  instances started ${mine.length}, completed ${completed} | effects processed ${yield* counter(
      "ironflow_processed_total",
      "effect"
    )}, retried ${yield* counter("ironflow_failed_attempts_total", "effect")}, dead-lettered ${yield* counter(
      "ironflow_dead_lettered_total",
      "effect"
    )} | timers fired ${yield* counter("ironflow_processed_total", "timer")} | dead letters in store ${dead}`
    return { completed, line }
  })

  yield* Console.log("\nProgress:")
  const expectedTerminal = scenarios.filter((s) => !s.expectDeadLetter).length
  const expectedDead = scenarios.filter((s) => s.expectDeadLetter).length
  let last = ""
  const finished = yield* Effect.gen(function*() {
    const { completed, line } = yield* progress
    if (line !== last) yield* Console.log(line)
    last = line
    const deadNow = yield* counter("ironflow_dead_lettered_total", "effect")
    return completed >= expectedTerminal && deadNow >= expectedDead
  }).pipe(
    Effect.repeat({ schedule: Schedule.spaced("300 millis"), until: (done) => done }),
    Effect.timeout("60 seconds"),
    Effect.option
  )
  if (Option.isNone(finished)) yield* Console.log("  (stopped waiting after 60 seconds)")

  yield* Console.log("\nSummary:")
  yield* Console.log(`  ${pad("order", 14)} ${pad("status", 10)} ${pad("events", 7)} ${pad("done", 5)} story`)
  for (const scenario of scenarios) {
    const id = orderId(scenario.name)
    const state = yield* service.fetchLatestState(OrderWorkflow, id)
    const events = yield* service.fetchWorkflowEvents(OrderWorkflow.type, id)
    const summary = (yield* service.listWorkflows(OrderWorkflow.type, 100_000)).find((o) => o.workflowId === id)
    const done = summary !== undefined && Option.isSome(summary.completedAt) ? "yes" : "no"
    const status = state.status === "cancelled" && state.refunded ? "refunded" : state.status
    yield* Console.log(
      `  ${pad(id, 14)} ${pad(status, 10)} ${pad(String(events.length), 7)} ${pad(done, 5)} ${scenario.story}`
    )
  }
  const letters = yield* deadLetters.fetch({ workflowType: OrderWorkflow.type, limit: 5 })
  for (const letter of letters.filter((l) => ids.includes(l.workflowId as OrderId))) {
    const error = Option.getOrElse(letter.lastError, () => "").split("\n")[0]
    yield* Console.log(
      `\n  dead letter ${letter.id} (${letter.workflowId}) after ${letter.attempts} attempts: ${error}`
    )
    yield* Console.log(
      `  inspect with: npx ironflow dead-letters list --type order; retry with: npx ironflow dead-letters retry ${letter.id}`
    )
  }
  const total = yield* service.listWorkflows(OrderWorkflow.type, 100_000)
  yield* Console.log(
    `\nStored now: ${total.length} orders from ${run} run(s), ${yield* deadLetters.count({
      workflowType: OrderWorkflow.type
    })} dead letter(s). Run \`npm start\` again: the data persists.`
  )
})

const withConsole = process.argv.includes("--console")

const Runtime = WorkflowRuntime.layer.pipe(
  Layer.provide(WorkflowRegistry.layer([OrderHandler])),
  Layer.provide(Layer.mergeAll(PaymentGatewayLive, CarrierLive)),
  Layer.provide(RuntimeConfig.layerFromEnv({ timerPollInterval: "250 millis" })),
  Layer.provideMerge(PgWorkflowStore.layer),
  Layer.provide(Database.layerFromEnv())
)

// The console shares the application's store and service: typed state and the order's state machine on its pages.
const App = withConsole
  ? IronflowConsole.layerConfig({ views: [OrderStateMachine] }).pipe(Layer.provideMerge(Runtime))
  : Runtime

const main = withConsole
  ? program.pipe(
    Effect.zipRight(Effect.gen(function*() {
      const running = yield* Effect.serviceOptional(IronflowConsole.Console)
      yield* Console.log(
        `\nThe console is open on ${running.url}: instances, diagrams, the dead letter (retry it there: the runtime here runs it). Ctrl+C stops.`
      )
      return yield* Effect.never
    }))
  )
  : program

main.pipe(Effect.provide(App), NodeRuntime.runMain)
