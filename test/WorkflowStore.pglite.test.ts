import { suite } from "./contract/storeSuite.js"
import { layerPglite } from "./support/database.js"

suite("pglite", layerPglite(), { concurrentTransactions: false })
