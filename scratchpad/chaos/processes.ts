/**
 * Worker processes of the chaos harness: spawned as `node --import tsx
 * scratchpad/chaos/worker.ts` in their own process group, with their output
 * in a log file, and always killed when the driver ends (normally, on
 * failure, on Ctrl+C, or when its own process exits).
 */
import { Deferred, Duration, Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { createWriteStream, readFileSync } from "node:fs"
import { join } from "node:path"
import type { WorkerOptions } from "./worker.js"

export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly at: number
}

export interface Worker {
  readonly name: string
  readonly workerId: string
  readonly pid: number
  readonly spawnedAt: number
  readonly logFile: string
  /** Completes with the time `CHAOS_READY` was printed; fails if the process exits first. */
  readonly ready: Effect.Effect<number, Error>
  readonly exited: Effect.Effect<Exit>
  readonly isAlive: () => boolean
  readonly signal: (signal: NodeJS.Signals) => void
  /** Lines of its log matching `pattern`. */
  readonly countLog: (pattern: RegExp) => number
  /** The matches of `pattern` in its log, line by line. */
  readonly matchLog: (pattern: RegExp) => ReadonlyArray<RegExpMatchArray>
  readonly tail: (lines: number) => string
}

const live = new Set<ChildProcess>()
const spawned: Array<Worker> = []

/** Every worker spawned since `at` (ms), oldest first. */
export const spawnedSince = (at: number): ReadonlyArray<Worker> => spawned.filter((w) => w.spawnedAt >= at)

const killGroup = (child: ChildProcess, signal: NodeJS.Signals) => {
  if (child.pid === undefined) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    try {
      child.kill(signal)
    } catch {
      // already gone
    }
  }
}

/** SIGKILLs every worker still running (their process groups). */
export const killAll = () => {
  for (const child of live) killGroup(child, "SIGKILL")
}

// Never leave workers behind, whatever happens to the driver.
process.on("exit", killAll)

const root = new URL("../../", import.meta.url).pathname

/** Spawns a worker; it is killed (SIGKILL) when the scope closes if still running. */
export const spawnWorker = (name: string, logDir: string, options: WorkerOptions) =>
  Effect.gen(function*() {
    const logFile = join(logDir, `${name}.log`)
    const log = createWriteStream(logFile, { flags: "a" })
    const readyDeferred = yield* Deferred.make<number, Error>()
    const exitDeferred = yield* Deferred.make<Exit>()
    const child = spawn(process.execPath, ["--import", "tsx", "scratchpad/chaos/worker.ts"], {
      cwd: root,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, CHAOS_WORKER: JSON.stringify(options), NODE_NO_WARNINGS: "1" }
    })
    live.add(child)
    const spawnedAt = Date.now()
    let buffer = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      log.write(chunk)
      buffer += chunk.toString("utf8")
      if (buffer.includes("CHAOS_READY")) {
        Deferred.unsafeDone(readyDeferred, Effect.succeed(Date.now()))
        buffer = ""
      } else if (buffer.length > 10_000) buffer = buffer.slice(-200)
    })
    child.stderr!.on("data", (chunk: Buffer) => log.write(chunk))
    child.on("exit", (code, signal) => {
      live.delete(child)
      const at = Date.now()
      Deferred.unsafeDone(
        readyDeferred,
        Effect.fail(new Error(`${name} exited (code ${code}, signal ${signal}) before it was ready; see ${logFile}`))
      )
      Deferred.unsafeDone(exitDeferred, Effect.succeed({ code, signal, at }))
      log.end()
    })
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        if (!live.has(child)) return
        killGroup(child, "SIGKILL")
        yield* Deferred.await(exitDeferred).pipe(Effect.timeout(Duration.seconds(5)), Effect.ignore)
      })
    )
    const matchLog = (pattern: RegExp) => {
      try {
        return readFileSync(logFile, "utf8").split("\n").flatMap((line) => {
          const match = line.match(pattern)
          return match === null ? [] : [match]
        })
      } catch {
        return []
      }
    }
    const worker: Worker = {
      name,
      workerId: options.workerId,
      pid: child.pid!,
      spawnedAt,
      logFile,
      ready: Deferred.await(readyDeferred),
      exited: Deferred.await(exitDeferred),
      isAlive: () => live.has(child),
      signal: (signal) => {
        if (!live.has(child)) return
        // SIGKILL/SIGSTOP/SIGCONT the whole group; SIGTERM the process itself, as a supervisor would.
        if (signal === "SIGTERM") child.kill(signal)
        else killGroup(child, signal)
      },
      countLog: (pattern) => matchLog(pattern).length,
      matchLog,
      tail: (lines) => {
        try {
          return readFileSync(logFile, "utf8").split("\n").slice(-lines).join("\n")
        } catch {
          return ""
        }
      }
    }
    spawned.push(worker)
    return worker
  })
