/**
 * The `ironflow` admin command: migrations, instances, dead letters, queue
 * statistics. Connects to `--database-url`, `DATABASE_URL`, or the embedded
 * database in `--data-dir` / `IRONFLOW_DATA_DIR` (default `.ironflow`).
 *
 * Each command group lives in `internal/cli/`; this module assembles them.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import { readFileSync } from "node:fs"
import * as ConsoleCommand from "./internal/cli/console.js"
import * as DeadLettersCommand from "./internal/cli/deadLetters.js"
import * as DiagramCommand from "./internal/cli/diagram.js"
import * as InstancesCommand from "./internal/cli/instances.js"
import * as MigrateCommand from "./internal/cli/migrate.js"
import * as ProjectionsCommand from "./internal/cli/projections.js"
import * as PruneCommand from "./internal/cli/prune.js"
import * as SchedulesCommand from "./internal/cli/schedules.js"
import * as StatsCommand from "./internal/cli/stats.js"

export {
  /**
   * A command that cannot do what was asked (unknown instance, not a dead letter): exit code 1.
   *
   * @since 0.1.0
   * @category errors
   */
  CliError,
  /**
   * An argument that names nothing the command can act on (an unknown
   * projection): a bad argument, exit code 2.
   *
   * @since 0.1.0
   * @category errors
   */
  UsageError
} from "./internal/cli/shared.js"

/**
 * @since 0.1.0
 * @category commands
 */
export const command = Command.make("ironflow").pipe(
  Command.withDescription("Operate ironflow: migrations, instances, dead letters, queue statistics"),
  Command.withSubcommands([
    MigrateCommand.command,
    InstancesCommand.command,
    DeadLettersCommand.command,
    StatsCommand.command,
    ProjectionsCommand.command,
    DiagramCommand.command,
    PruneCommand.command,
    SchedulesCommand.command,
    ConsoleCommand.command
  ])
)

// The installed package's version (package.json is one level above src/ and dist/ alike).
const version: string = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")).version

/**
 * @since 0.1.0
 * @category commands
 */
export const run = Command.run(command, { name: "ironflow", version })
