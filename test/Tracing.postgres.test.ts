import { suite } from "./contract/tracingSuite.js"
import { layerPostgres } from "./support/database.js"

suite("postgres", layerPostgres())
