import { suite } from "./contract/scheduleSuite.js"
import { layerPostgres } from "./support/database.js"

suite("postgres", layerPostgres())
