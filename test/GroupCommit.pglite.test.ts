import { suite } from "./contract/groupCommitSuite.js"
import { layerPglite } from "./support/database.js"

suite("pglite", layerPglite())
