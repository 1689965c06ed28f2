import type { Worker } from "./processes.js"

/** What a process scenario hands back to the driver. */
export interface ScenarioOutcome {
  readonly figures: Record<string, number | string | boolean>
  readonly failures: ReadonlyArray<string>
  /** Its worker processes, for log tails when it fails. */
  readonly workers: ReadonlyArray<Worker>
}
