/**
 * A subscription trial: it expires 24 hours after it starts unless the
 * customer subscribes, which charges the card. Used by the test-kit examples.
 */
import { Schema } from "effect"
import { Decision, Workflow } from "ironflow"

export class StartTrial extends Schema.TaggedClass<StartTrial>()("StartTrial", { customerId: Schema.String }) {}
export class Subscribe extends Schema.TaggedClass<Subscribe>()("Subscribe", {
  customerId: Schema.String,
  plan: Schema.String
}) {}
export class ExpireTrial extends Schema.TaggedClass<ExpireTrial>()("ExpireTrial", { customerId: Schema.String }) {}
export class ChargeSucceeded extends Schema.TaggedClass<ChargeSucceeded>()("ChargeSucceeded", {
  customerId: Schema.String
}) {}

export class TrialStarted extends Schema.TaggedClass<TrialStarted>()("TrialStarted", {}) {}
export class Subscribed extends Schema.TaggedClass<Subscribed>()("Subscribed", { plan: Schema.String }) {}
export class TrialExpired extends Schema.TaggedClass<TrialExpired>()("TrialExpired", {}) {}
export class Charged extends Schema.TaggedClass<Charged>()("Charged", {}) {}

export class ChargeCard extends Schema.TaggedClass<ChargeCard>()("ChargeCard", {
  customerId: Schema.String,
  plan: Schema.String
}) {}

export const TrialState = Schema.Struct({
  status: Schema.Literal("none", "trial", "subscribing", "active", "expired"),
  plan: Schema.NullOr(Schema.String)
})

export const TrialWorkflow = Workflow.make({
  type: "trial",
  state: TrialState,
  input: Schema.Union(StartTrial, Subscribe, ExpireTrial, ChargeSucceeded),
  event: Schema.Union(TrialStarted, Subscribed, TrialExpired, Charged),
  effect: ChargeCard,
  rejection: Schema.String,
  initialState: { status: "none", plan: null },
  workflowId: { field: "customerId" },
  evolve: (state, event) => {
    switch (event._tag) {
      case "TrialStarted":
        return { ...state, status: "trial" as const }
      case "Subscribed":
        return { status: "subscribing" as const, plan: event.plan }
      case "TrialExpired":
        return { ...state, status: "expired" as const }
      case "Charged":
        return { ...state, status: "active" as const }
    }
  },
  decide: (_now, state, input) => {
    switch (input._tag) {
      case "StartTrial":
        return state.status !== "none"
          ? Decision.reject("a trial was already started")
          : Decision.accept(new TrialStarted()).pipe(
            Decision.withTimerAfter("24 hours", new ExpireTrial({ customerId: input.customerId }), { key: "trial" })
          )
      case "Subscribe":
        return state.status !== "trial"
          ? Decision.reject(`cannot subscribe while ${state.status}`)
          : Decision.accept(new Subscribed({ plan: input.plan })).pipe(
            Decision.cancelTimer("trial"),
            Decision.withEffect(new ChargeCard({ customerId: input.customerId, plan: input.plan }))
          )
      case "ExpireTrial":
        return state.status !== "trial" ? Decision.reject("not in trial") : Decision.accept(new TrialExpired())
      case "ChargeSucceeded":
        return Decision.accept(new Charged())
    }
  },
  isTerminal: (state) => state.status === "expired" || state.status === "active"
})
