/**
 * Loads an application's module for the command (`--workflows MODULE`): a
 * JavaScript module under plain node, a TypeScript module through tsx when it
 * is installed (beside ironflow or in the project the command runs in).
 *
 * @internal
 */
import { createRequire } from "node:module"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"

const typeScript = /\.(?:ts|mts|cts|tsx)$/

interface Tsx {
  readonly tsImport: (specifier: string, parentURL: string) => Promise<Record<string, unknown>>
}

const errorCode = (error: unknown): unknown =>
  typeof error === "object" && error !== null ? (error as { code?: unknown }).code : undefined

const findTsx = async (): Promise<Tsx | undefined> => {
  try {
    return (await import("tsx/esm/api")) as Tsx
  } catch (error) {
    if (errorCode(error) !== "ERR_MODULE_NOT_FOUND") throw error
  }
  try {
    const path = createRequire(resolve("package.json")).resolve("tsx/esm/api")
    return (await import(pathToFileURL(path).href)) as Tsx
  } catch {
    return undefined
  }
}

/** @internal */
export const importModule = async (path: string): Promise<Record<string, unknown>> => {
  const url = pathToFileURL(resolve(path)).href
  if (!typeScript.test(path)) return import(url)
  const tsx = await findTsx()
  if (tsx !== undefined) return tsx.tsImport(url, import.meta.url)
  try {
    return await import(url) // a node that strips types itself, or a loader given with --import
  } catch (error) {
    if (errorCode(error) !== "ERR_UNKNOWN_FILE_EXTENSION") throw error
    throw new Error(
      "a TypeScript module needs tsx, which is not installed: install it (npm install --save-dev tsx) " +
        "or pass the compiled .js module"
    )
  }
}
