import { defineConfig } from "vitest/config"
import { alias } from "./vitest.shared.js"

// The chaos suites (npm run test:chaos runs them after the process scenarios); `npm test` does not pick them up.
export default defineConfig({
  resolve: { alias },
  test: {
    include: ["test/chaos/**/*.chaos.ts"],
    setupFiles: ["./test/setup.ts"],
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 120_000,
    sequence: { concurrent: false }
  }
})
