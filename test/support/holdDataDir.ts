/**
 * Run by test/Database.test.ts as another process: opens the embedded
 * database in the directory given as argument, prints "ready", and holds it
 * until its standard input closes.
 */
import { Effect, Layer } from "effect"
import * as Database from "../../src/Database.js"

const dataDir = process.argv[2]

const program = Effect.gen(function*() {
  yield* Layer.build(Database.layer({ _tag: "Embedded", dataDir }))
  process.stdout.write("ready\n")
  yield* Effect.async<void>((resume) => {
    process.stdin.on("end", () => resume(Effect.void))
    process.stdin.resume()
  })
}).pipe(Effect.scoped)

Effect.runPromise(program).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  }
)
