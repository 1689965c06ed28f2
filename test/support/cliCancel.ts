/**
 * A module for `ironflow instances cancel --workflows` in test/cli.test.ts:
 * a workflow with a cancellation input and one without.
 */
import { makeCancellableWorkflow } from "./cancelFixtures.js"

export const CliCancellable = makeCancellableWorkflow("cli_cancellable")
export const CliPlain = makeCancellableWorkflow("cli_plain", { cancel: "none" })
