import { suite } from "./contract/timeoutCancelSuite.js"
import { layerPglite } from "./support/database.js"

suite("pglite", layerPglite())
