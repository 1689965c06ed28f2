import { describe, it } from "@effect/vitest"
import { DeciderTest } from "ironflow"
import {
  ChargeCard,
  ExpireTrial,
  StartTrial,
  Subscribe,
  Subscribed,
  TrialStarted,
  TrialWorkflow
} from "../../scratchpad/examples/TrialWorkflow.js"

describe("TrialWorkflow decider", () => {
  it.effect("starting a trial schedules its expiry in 24 hours", () =>
    DeciderTest.given(TrialWorkflow, [])
      .when(new StartTrial({ customerId: "c-1" }))
      .thenAccepts({
        events: [new TrialStarted()],
        effects: [],
        timers: [{ delay: "24 hours", input: new ExpireTrial({ customerId: "c-1" }), key: "trial" }],
        state: { status: "trial", plan: null }
      }))

  it.effect("subscribing cancels the expiry and charges the card", () =>
    DeciderTest.given(TrialWorkflow, [new TrialStarted()])
      .when(new Subscribe({ customerId: "c-1", plan: "pro" }))
      .thenAccepts({
        events: [new Subscribed({ plan: "pro" })],
        effects: [new ChargeCard({ customerId: "c-1", plan: "pro" })],
        cancelTimers: ["trial"],
        terminal: false
      }))

  it.effect("a second trial is rejected", () =>
    DeciderTest.given(TrialWorkflow, [new TrialStarted()])
      .when(new StartTrial({ customerId: "c-1" }))
      .thenRejects("a trial was already started"))
})
