/**
 * Entry point of the `ironflow` command.
 *
 * Exit codes: 0 success, 1 failure (database unreachable, unknown instance,
 * missing data directory, ...), 2 bad arguments (unparsable or out of range,
 * or naming nothing known, such as an unknown projection). Errors are printed as one line, never a stack trace,
 * and never with connection secrets.
 *
 * @since 0.1.0
 */
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Cli from "./Cli.js"

const oneLine = (error: unknown): string => {
  const parts: Array<string> = []
  let current: unknown = error
  for (let depth = 0; current !== undefined && current !== null && depth < 4; depth++) {
    const message = current instanceof Error || (typeof current === "object" && "message" in current)
      ? String((current as { message: unknown }).message)
      : typeof current === "object"
      ? "" // an object without a message says nothing as "[object Object]"
      : String(current)
    if (message && !parts.some((p) => p.includes(message))) parts.push(message)
    current = (current as { cause?: unknown }).cause
  }
  return parts.join(": ").replace(/\s*\n\s*/g, " ")
}

let exitCode = 0

const main = Cli.run(process.argv).pipe(
  Effect.catchAllCause((cause) =>
    Effect.sync(() => {
      if (Cause.isInterruptedOnly(cause)) {
        exitCode = 130
        return
      }
      const failure = Cause.failureOption(cause)
      if (Option.isSome(failure) && ValidationError.isValidationError(failure.value)) {
        exitCode = 2 // @effect/cli has printed what was wrong
        return
      }
      const error = Option.getOrElse(failure, () => Cause.squash(cause))
      if (error instanceof Cli.UsageError) {
        exitCode = 2
        process.stderr.write(`ironflow: ${error.message}\n`)
        return
      }
      exitCode = 1
      const message = oneLine(error)
      const hint = /relation "ironflow\.[a-z_]+" does not exist/.test(message)
        ? " (the ironflow schema is missing or older than this version: run `ironflow migrate`)"
        : ""
      process.stderr.write(`ironflow: ${message}${hint}\n`)
    })
  ),
  Effect.provide(NodeContext.layer),
  Logger.withMinimumLogLevel(LogLevel.Warning)
)

NodeRuntime.runMain(main, { disableErrorReporting: true, teardown: (_exit, onExit) => onExit(exitCode) })
