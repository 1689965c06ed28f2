import { suite } from "./contract/consoleSuite.js"
import { layerPglite } from "./support/database.js"

suite("pglite", layerPglite())
