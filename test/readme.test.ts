/**
 * The README's examples are the files that run: keep them in step.
 */
import { assert, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"

const root = new URL("..", import.meta.url)
const readme = readFileSync(new URL("README.md", root), "utf8")

describe("README", () => {
  for (
    const file of [
      "scratchpad/readme-counter.ts",
      "test/examples/trial-decider.test.ts",
      "test/examples/trial-timer.test.ts",
      "test/examples/trial-dead-letter.test.ts",
      "test/examples/cron-schedule.test.ts",
      "test/examples/trial-tracing.test.ts"
    ]
  ) {
    it(`shows ${file} as it is`, () => {
      assert.include(readme, readFileSync(new URL(file, root), "utf8"))
    })
  }

  it("names the two set-up commands", () => {
    assert.include(readme, "npm start")
    assert.include(readme, "npm test")
  })
})
