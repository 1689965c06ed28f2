import { suite } from "./contract/tracingSuite.js"
import { layerPglite } from "./support/database.js"

suite("pglite", layerPglite())
