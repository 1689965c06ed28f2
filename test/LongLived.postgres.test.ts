import { TestRuntime } from "ironflow"
import { suite } from "./contract/longLivedSuite.js"

suite("postgres", () => TestRuntime.postgres())
