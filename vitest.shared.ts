import { fileURLToPath } from "node:url"

/**
 * In this repository `ironflow` and `ironflow/<Module>` are the sources in src/ (the package's
 * exports point at the compiled dist/, which a checkout does not have until `npm run build`).
 * tsconfig.json's `paths` does the same for tsc and tsx.
 */
export const alias = [
  { find: /^ironflow$/, replacement: fileURLToPath(new URL("./src/index.ts", import.meta.url)) },
  { find: /^ironflow\/(.+)$/, replacement: fileURLToPath(new URL("./src/$1.ts", import.meta.url)) }
]
