import { Config, Effect } from "effect"
import type { RuntimeConfig, WorkflowService } from "ironflow"
declare const f: (c: Config.Config.Wrap<Partial<WorkflowService.ServiceConfig>>) => void
f({ snapshotEvery: Config.integer("X") })
f(Config.succeed({ snapshotEvery: 3 }))
f({})
declare const g: (c: Config.Config.Wrap<RuntimeConfig.Options>) => void
g({ effectPollInterval: Config.duration("X") })
g({ effectWorkers: Config.integer("W") })
const w = Config.unwrap<Partial<WorkflowService.ServiceConfig>>({ snapshotEvery: Config.integer("X") })
Effect.runSync(w)
