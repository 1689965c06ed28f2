import { suite } from "./contract/serviceSuite.js"
import { layerPostgres } from "./support/database.js"

suite("postgres", layerPostgres())
