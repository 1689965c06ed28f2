/**
 * A module for `ironflow projections rebuild --workflows` in test/cli.test.ts.
 */
import { Effect } from "effect"
import { Projection } from "ironflow"
import { TrialWorkflow } from "../../scratchpad/examples/TrialWorkflow.js"

export const TrialCount = Projection.make({
  name: "trial-count",
  workflows: [TrialWorkflow],
  handle: () => Effect.void
})
