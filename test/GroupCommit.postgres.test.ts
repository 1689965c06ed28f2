import { suite } from "./contract/groupCommitSuite.js"
import { layerPostgres } from "./support/database.js"

suite("postgres", layerPostgres())
