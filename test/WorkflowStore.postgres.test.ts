import { suite } from "./contract/storeSuite.js"
import { layerPostgres } from "./support/database.js"

suite("postgres", layerPostgres(), { concurrentTransactions: true })
