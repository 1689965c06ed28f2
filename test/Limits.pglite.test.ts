import { suite } from "./contract/limitsSuite.js"
import { layerPglite } from "./support/database.js"

suite("pglite", layerPglite())
