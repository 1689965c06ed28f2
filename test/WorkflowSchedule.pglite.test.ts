import { suite } from "./contract/scheduleSuite.js"
import { layerPglite } from "./support/database.js"

suite("pglite", layerPglite())
