import { TestRuntime } from "ironflow"
import { suite } from "./contract/projectionSuite.js"

suite("pglite", () => TestRuntime.embedded(), false)
