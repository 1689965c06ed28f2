import { suite } from "./contract/clockSkewSuite.js"
import { layerPostgres } from "./support/database.js"

suite("postgres", layerPostgres())
