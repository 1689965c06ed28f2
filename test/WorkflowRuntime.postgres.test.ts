import { suite } from "./contract/runtimeSuite.js"
import { layerPostgres } from "./support/database.js"

suite("postgres", layerPostgres())
