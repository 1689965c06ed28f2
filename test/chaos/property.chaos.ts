/**
 * Property test: random interleavings of inputs, effect results and timer
 * firings on one instance, delivered concurrently (with duplicates, and
 * results for operations that do not exist) while a live runtime on
 * PostgreSQL runs the real effects and timers, always leave a state equal to
 * folding the instance's stored events, and no input is applied twice.
 */
import { assert, layer } from "@effect/vitest"
import { Effect, FastCheck, Layer, Logger, LogLevel, Option, Schema } from "effect"
import { Decision, TestRuntime, Workflow, WorkflowService, WorkflowStore } from "ironflow"
import { ChaosDatabase, pgOn, report } from "./support.js"

class Deposit extends Schema.TaggedClass<Deposit>()("Deposit", {
  acct: Schema.String,
  op: Schema.String,
  amount: Schema.Number
}) {}
class Withdraw extends Schema.TaggedClass<Withdraw>()("Withdraw", {
  acct: Schema.String,
  op: Schema.String,
  amount: Schema.Number
}) {}
class Audited extends Schema.TaggedClass<Audited>()("Audited", { acct: Schema.String, op: Schema.String }) {}
class Matured extends Schema.TaggedClass<Matured>()("Matured", { acct: Schema.String, op: Schema.String }) {}
const LedgerInput = Schema.Union(Deposit, Withdraw, Audited, Matured)
type LedgerInput = typeof LedgerInput.Type

class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { op: Schema.String, amount: Schema.Number }) {}
class Withdrawn extends Schema.TaggedClass<Withdrawn>()("Withdrawn", { op: Schema.String, amount: Schema.Number }) {}
class AuditRecorded extends Schema.TaggedClass<AuditRecorded>()("AuditRecorded", { op: Schema.String }) {}
class InterestPaid extends Schema.TaggedClass<InterestPaid>()("InterestPaid", { op: Schema.String }) {}
const LedgerEvent = Schema.Union(Deposited, Withdrawn, AuditRecorded, InterestPaid)
type LedgerEvent = typeof LedgerEvent.Type

class Audit extends Schema.TaggedClass<Audit>()("Audit", { acct: Schema.String, op: Schema.String }) {}

const LedgerState = Schema.Struct({
  balance: Schema.Number,
  deposits: Schema.Array(Schema.String),
  withdrawals: Schema.Array(Schema.String),
  audited: Schema.Array(Schema.String),
  maturing: Schema.Array(Schema.String),
  matured: Schema.Array(Schema.String)
})
type LedgerState = typeof LedgerState.Type

const maturing = (amount: number) => amount % 2 === 0
const Ledger = Workflow.make({
  type: "prop_ledger",
  state: LedgerState,
  input: LedgerInput,
  event: LedgerEvent,
  effect: Audit,
  rejection: Schema.String,
  initialState: { balance: 0, deposits: [], withdrawals: [], audited: [], maturing: [], matured: [] },
  workflowId: { field: "acct" },
  // Each deposit is audited (an effect whose result comes back as Audited); an even deposit also matures
  // (a keyed timer firing Matured) and pays one unit of interest.
  evolve: (state, event): LedgerState => {
    switch (event._tag) {
      case "Deposited":
        return {
          ...state,
          balance: state.balance + event.amount,
          deposits: [...state.deposits, event.op],
          maturing: maturing(event.amount) ? [...state.maturing, event.op] : state.maturing
        }
      case "Withdrawn":
        return { ...state, balance: state.balance - event.amount, withdrawals: [...state.withdrawals, event.op] }
      case "AuditRecorded":
        return { ...state, audited: [...state.audited, event.op] }
      case "InterestPaid":
        return { ...state, balance: state.balance + 1, matured: [...state.matured, event.op] }
    }
  },
  decide: (_now, state, input) => {
    const known = state.deposits.includes(input.op) || state.withdrawals.includes(input.op)
    switch (input._tag) {
      case "Deposit": {
        if (known) return Decision.reject(`operation ${input.op} already applied`)
        const deposited = Decision.accept(new Deposited({ op: input.op, amount: input.amount })).pipe(
          Decision.withEffect(new Audit({ acct: input.acct, op: input.op }))
        )
        return maturing(input.amount)
          ? deposited.pipe(
            Decision.withTimerAfter(
              `${(input.amount % 5) * 10} millis`,
              new Matured({ acct: input.acct, op: input.op }),
              { key: `m-${input.op}` }
            )
          )
          : deposited
      }
      case "Withdraw":
        if (known) return Decision.reject(`operation ${input.op} already applied`)
        return input.amount > state.balance
          ? Decision.reject("insufficient funds")
          : Decision.accept(new Withdrawn({ op: input.op, amount: input.amount }))
      case "Audited":
        if (!state.deposits.includes(input.op)) return Decision.reject(`no deposit ${input.op} to audit`)
        return state.audited.includes(input.op)
          ? Decision.reject(`deposit ${input.op} already audited`)
          : Decision.accept(new AuditRecorded({ op: input.op }))
      case "Matured":
        if (!state.maturing.includes(input.op)) return Decision.reject(`no maturing deposit ${input.op}`)
        return state.matured.includes(input.op)
          ? Decision.reject(`deposit ${input.op} already matured`)
          : Decision.accept(new InterestPaid({ op: input.op }))
    }
  }
})

const LedgerHandler = Ledger.handler((audit) =>
  Effect.sleep(`${Math.floor(Math.random() * 15)} millis`).pipe(
    Effect.as(Option.some<LedgerInput>(new Audited({ acct: audit.acct, op: audit.op })))
  )
)

const Env = Layer.unwrapEffect(
  Effect.map(ChaosDatabase, ({ url }) =>
    TestRuntime.layer({
      handlers: [LedgerHandler],
      database: pgOn(url, 8),
      config: {
        effectPollInterval: "20 millis",
        timerPollInterval: "50 millis",
        effectWorkers: 2,
        timerWorkers: 2,
        handlerConcurrency: 8
      }
    }))
).pipe(Layer.provideMerge(ChaosDatabase.layer), Layer.provide(Logger.minimumLogLevel(LogLevel.Error)))

/** One generated delivery: an operation (by index), delivered as itself or as a forged result/firing. */
const Delivery = FastCheck.record({
  op: FastCheck.nat({ max: 11 }),
  as: FastCheck.constantFrom("command", "command", "command", "result", "firing"),
  pause: FastCheck.nat({ max: 8 })
})
const Operations = FastCheck.array(
  FastCheck.record({ withdraw: FastCheck.boolean(), amount: FastCheck.integer({ min: 1, max: 40 }) }),
  { minLength: 1, maxLength: 12 }
)

let run = 0
const totals = { runs: 0, deliveries: 0, accepted: 0, rejected: 0, events: 0 }

layer(Env, { excludeTestServices: true, timeout: "120 seconds" })("property", (it) => {
  it.effect.prop(
    "random interleavings leave the state equal to the fold of the stored events; no input applied twice",
    [Operations, FastCheck.array(Delivery, { minLength: 10, maxLength: 60 }), FastCheck.integer({ min: 1, max: 8 })],
    ([operations, deliveries, concurrency]) =>
      Effect.gen(function*() {
        const service = yield* WorkflowService.WorkflowService
        const store = yield* WorkflowStore.WorkflowStore
        const acct = `acct-${++run}`
        const inputs = deliveries.map(({ as, op, pause }) => {
          const operation = operations[op % operations.length]
          const id = `op-${op}` // ids beyond the operations list name operations that never existed
          const input: LedgerInput = as === "result"
            ? new Audited({ acct, op: id })
            : as === "firing"
            ? new Matured({ acct, op: id })
            : operation.withdraw
            ? new Withdraw({ acct, op: id, amount: operation.amount })
            : new Deposit({ acct, op: id, amount: operation.amount })
          return { input, pause }
        })
        const outcomes = yield* Effect.forEach(
          inputs,
          ({ input, pause }) => Effect.zipRight(Effect.sleep(`${pause} millis`), service.execute(Ledger, input)),
          { concurrency }
        )
        // Let the runtime deliver every real result and timer.
        yield* TestRuntime.awaitCondition(
          Effect.map(store.fetchPending(Ledger.type, acct), (pending) => pending.length === 0),
          { timeout: "30 seconds", description: `the effects and timers of ${acct}` }
        )
        const stored = yield* service.fetchWorkflowEvents(Ledger.type, acct)
        const events = yield* Effect.forEach(stored, (e) => Schema.decodeUnknown(LedgerEvent)(fromStored(e.payload)))
        const folded = events.reduce(Ledger.evolve, Ledger.initialState)
        const state = yield* service.fetchLatestState(Ledger, acct)
        assert.deepStrictEqual(state, folded, "state = fold of the stored events")
        assert.deepStrictEqual(stored.map((e) => e.sequence), stored.map((_, i) => i + 1), "sequences 1..n")
        // No input applied twice: every (event kind, operation) at most once.
        const keys = events.map((e: LedgerEvent) => `${e._tag}:${e.op}`)
        assert.strictEqual(new Set(keys).size, keys.length, `an input was applied twice: ${keys.join(", ")}`)
        // Every deposit got exactly its audit result, every maturing deposit its timer firing.
        const deposits = events.filter((e): e is Deposited => e._tag === "Deposited")
        assert.deepStrictEqual([...folded.audited].sort(), deposits.map((d) => d.op).sort())
        assert.deepStrictEqual([...folded.deposits].sort(), deposits.map((d) => d.op).sort())
        assert.deepStrictEqual(
          [...folded.matured].sort(),
          deposits.filter((d) => maturing(d.amount)).map((d) => d.op).sort()
        )
        assert.isAtLeast(folded.balance, 0)
        totals.runs++
        totals.deliveries += inputs.length
        totals.accepted += outcomes.filter((o) => o._tag === "Accepted").length
        totals.rejected += outcomes.filter((o) => o._tag === "Rejected").length
        totals.events += events.length
      }),
    { fastCheck: { numRuns: 60 } }
  )

  it.effect("figures", () => report("property.interleavings", { ...totals }))
})

/** Stored events use `{"type": ...}`; the Schema reads `_tag`. */
const fromStored = (payload: unknown) => {
  const { type, ...rest } = payload as { readonly type: string }
  return { _tag: type, ...rest }
}
