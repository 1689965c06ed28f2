#!/usr/bin/env node
// The `ironflow` command. An installed package runs the compiled CLI (dist/bin.js) under plain node.
// A checkout without a build (or with IRONFLOW_FROM_SOURCE=1, which the repository's own tests set so
// that they never run a stale dist/) runs the TypeScript sources through tsx, a devDependency.
import { existsSync } from "node:fs"

const compiled = new URL("../dist/bin.js", import.meta.url)
const checkout = existsSync(new URL("../tsconfig.json", import.meta.url))

if (existsSync(compiled) && !(checkout && process.env.IRONFLOW_FROM_SOURCE === "1")) {
  await import(compiled.href)
} else if (checkout) {
  const { register } = await import("tsx/esm/api")
  register()
  await import(new URL("../src/bin.ts", import.meta.url).href)
} else {
  process.stderr.write("ironflow: dist/bin.js is missing from this installation of ironflow (reinstall the package)\n")
  process.exitCode = 1
}
