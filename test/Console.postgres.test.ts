import { suite } from "./contract/consoleSuite.js"
import { layerPostgres } from "./support/database.js"

suite("postgres", layerPostgres())
