import { suite } from "./contract/timeoutCancelSuite.js"
import { layerPostgres } from "./support/database.js"

suite("postgres", layerPostgres())
