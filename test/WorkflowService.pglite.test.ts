import { suite } from "./contract/serviceSuite.js"
import { layerPglite } from "./support/database.js"

suite("pglite", layerPglite())
