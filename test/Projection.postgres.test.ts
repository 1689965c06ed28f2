import { TestRuntime } from "ironflow"
import { suite } from "./contract/projectionSuite.js"

suite("postgres", () => TestRuntime.postgres(), true)
