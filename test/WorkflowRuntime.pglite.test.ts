import { suite } from "./contract/runtimeSuite.js"
import { layerPglite } from "./support/database.js"

suite("pglite", layerPglite())
