import { suite } from "./contract/limitsSuite.js"
import { layerPostgres } from "./support/database.js"

suite("postgres", layerPostgres())
