import { suite } from "./contract/clockSkewSuite.js"
import { layerPglite } from "./support/database.js"

suite("pglite", layerPglite())
