/**
 * The lock file of an embedded data directory (`<dir>.lock`, beside it): one
 * process per directory per machine.
 *
 * The file records who holds it: pid, the process's start time (Linux:
 * field 22 of `/proc/<pid>/stat`), the boot id, the host and a random token.
 * A lock is stale, and is taken over, when its holder is gone: no process
 * has its pid, the machine was rebooted since (another boot id), or the
 * process now running with that pid started at another time (the pid was
 * reused). Where the start time cannot be read (not Linux) a live pid counts
 * as the holder.
 *
 * @internal
 */
import { randomUUID } from "node:crypto"
import { closeSync, linkSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from "node:fs"
import { hostname } from "node:os"

/** @internal */
export interface Holder {
  readonly pid: number
  readonly startTime: string | null
  readonly bootId: string | null
  readonly host: string
  readonly token: string
  readonly since: string
}

/** @internal */
export type Acquired =
  | { readonly _tag: "Acquired"; readonly token: string }
  | { readonly _tag: "Held"; readonly holder: Holder }

const readOrNull = (path: string): string | null => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return null
  }
}

/**
 * The start time of a process in clock ticks since boot (Linux), or null.
 *
 * @internal
 */
export const processStartTime = (pid: number): string | null => {
  const stat = readOrNull(`/proc/${pid}/stat`)
  if (stat === null) return null
  // The command name (field 2) is in parentheses and may contain spaces: count from the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return fields[19] ?? null // field 22
}

/** @internal */
export const bootId = (): string | null => readOrNull("/proc/sys/kernel/random/boot_id")?.trim() ?? null

/** @internal */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as { code?: string }).code === "EPERM"
  }
}

const parse = (text: string, path: string): Holder | null => {
  try {
    const value = JSON.parse(text) as Partial<Holder> | number
    if (typeof value === "number") {
      // A plain pid, written by an earlier build.
      return Number.isInteger(value) && value > 0
        ? { pid: value, startTime: null, bootId: null, host: hostname(), token: "", since: legacySince(path) }
        : null
    }
    if (typeof value !== "object" || value === null || !Number.isInteger(value.pid)) return null
    return {
      pid: value.pid!,
      startTime: typeof value.startTime === "string" ? value.startTime : null,
      bootId: typeof value.bootId === "string" ? value.bootId : null,
      host: typeof value.host === "string" ? value.host : hostname(),
      token: typeof value.token === "string" ? value.token : "",
      since: typeof value.since === "string" ? value.since : legacySince(path)
    }
  } catch {
    return null
  }
}

const legacySince = (path: string): string => {
  try {
    return statSync(path).mtime.toISOString()
  } catch {
    return new Date(0).toISOString()
  }
}

/**
 * Whether the recorded holder may still be running (and must be respected).
 *
 * @internal
 */
export const holderIsLive = (holder: Holder): boolean => {
  // Inside this process the handles are shared, so a lock naming this pid was left by an
  // earlier process that had the same pid (pid 1 in a container, for one).
  if (holder.pid === process.pid && holder.host === hostname()) return false
  const boot = bootId()
  if (holder.bootId !== null && boot !== null && holder.bootId !== boot) return false // rebooted since
  if (holder.host !== hostname()) return true // cannot look at another machine's processes
  if (!isAlive(holder.pid)) return false
  const now = processStartTime(holder.pid)
  if (holder.startTime !== null && now !== null) return holder.startTime === now // else the pid was reused
  return true
}

/**
 * Takes the lock at `path`, or says who holds it. Throws on I/O errors.
 *
 * @internal
 */
export const acquire = (path: string): Acquired => {
  const token = randomUUID()
  const me: Holder = {
    pid: process.pid,
    startTime: processStartTime(process.pid),
    bootId: bootId(),
    host: hostname(),
    token,
    since: new Date().toISOString()
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = openSync(path, "wx")
      try {
        writeSync(fd, JSON.stringify(me))
      } finally {
        closeSync(fd)
      }
      return { _tag: "Acquired", token }
    } catch (error) {
      if ((error as { code?: string }).code !== "EEXIST") throw error
    }
    const text = readOrNull(path)
    if (text === null) continue // released meanwhile
    const holder = parse(text, path)
    if (holder !== null && holderIsLive(holder)) return { _tag: "Held", holder }
    breakStale(path, text)
  }
  throw new Error(`could not take the lock ${path} (it keeps changing)`)
}

/**
 * Removes a stale lock, unless another process replaced it meanwhile: the
 * file is moved aside atomically, and put back if it is not the stale one.
 */
const breakStale = (path: string, stale: string) => {
  const aside = `${path}.${randomUUID()}.stale`
  try {
    renameSync(path, aside)
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return
    throw error
  }
  try {
    if (readOrNull(aside) !== stale) {
      try {
        linkSync(aside, path) // a fresh lock taken meanwhile: restore it
      } catch (error) {
        if ((error as { code?: string }).code !== "EEXIST") throw error
      }
    }
  } finally {
    rmSync(aside, { force: true })
  }
}

/**
 * Removes the lock if it is still ours.
 *
 * @internal
 */
export const release = (path: string, token: string): void => {
  const text = readOrNull(path)
  if (text === null) return
  const holder = parse(text, path)
  if (holder?.token === token) rmSync(path, { force: true })
}
