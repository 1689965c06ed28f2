/**
 * The console in a real browser (issue #13 item 3): Debian's Chromium driven
 * by playwright-core (no browser download), over a real run of the example
 * application (`npm start`'s order app, on its own embedded data directory).
 * The overview's numbers are the database's, the instance page shows the
 * run's events and marks the state in the diagram, and the dead letter the
 * run leaves is retried from the page and then runs to completion (here the
 * carrier accepts every address). Screenshots of each page go to
 * scratchpad/console/screenshots/ (git-ignored) for a reviewer.
 *
 * Chromium comes from `apt-get install -y chromium` (.ci/run does it), or
 * from CHROMIUM_PATH; without it the test fails and says how to get it.
 */
import { afterAll, assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import {
  Database,
  PgWorkflowStore,
  RuntimeConfig,
  TestRuntime,
  WorkflowRegistry,
  WorkflowRuntime,
  WorkflowStore
} from "ironflow"
import * as IronflowConsole from "ironflow/Console"
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Browser, chromium, type Page } from "playwright-core"
import { OrderHandler } from "../scratchpad/order-app/OrderHandler.js"
import { OrderStateMachine, OrderWorkflow } from "../scratchpad/order-app/OrderWorkflow.js"
import { Carrier, PaymentGatewayLive } from "../scratchpad/order-app/services.js"

const root = new URL("..", import.meta.url).pathname
const screenshots = join(root, "scratchpad/console/screenshots")
const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"
const dataDir = mkdtempSync(join(tmpdir(), "ironflow-console-browser-"))
afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

const withoutDatabaseUrl = (env: NodeJS.ProcessEnv) => {
  const { DATABASE_URL: _, ...rest } = env
  return rest
}

// A real run of the example application, as a newcomer's `npm start` (embedded database, this directory).
const run = spawnSync(process.execPath, ["--import", "tsx", "scratchpad/order-app/main.ts"], {
  cwd: root,
  env: { ...withoutDatabaseUrl(process.env), IRONFLOW_DATA_DIR: dataDir },
  encoding: "utf8",
  timeout: 120_000
})

// The application again, now with the console in its Layer graph, and a carrier that accepts every address.
const CarrierAccepting = Layer.succeed(Carrier, { ship: () => Effect.succeed("TRK-BROWSER") })
const App = IronflowConsole.layer({ port: 0, views: [OrderStateMachine], refreshSeconds: 60 }).pipe(
  Layer.provideMerge(
    WorkflowRuntime.layer.pipe(
      Layer.provide(WorkflowRegistry.layer([OrderHandler])),
      Layer.provide(Layer.mergeAll(PaymentGatewayLive, CarrierAccepting)),
      Layer.provide(RuntimeConfig.layer({ effectPollInterval: "100 millis", maxClockSkew: "off" })),
      Layer.provideMerge(PgWorkflowStore.layer),
      Layer.provide(Database.layer({ _tag: "Embedded", dataDir, create: false }))
    )
  )
)

const launch = Effect.acquireRelease(
  Effect.tryPromise(() => {
    if (!existsSync(chromiumPath)) {
      throw new Error(
        `no Chromium at ${chromiumPath}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH`
      )
    }
    return chromium.launch({
      executablePath: chromiumPath,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync"
      ]
    })
  }),
  (browser: Browser) => Effect.promise(() => browser.close())
)

const shoot = (page: Page, name: string) =>
  Effect.promise(() => page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true }))

const text = (page: Page, selector: string) =>
  Effect.promise(() => page.locator(selector).first().textContent()).pipe(Effect.map((t) => (t ?? "").trim()))

layer(App, { excludeTestServices: true, timeout: 180_000 })("Console in Chromium", (it) => {
  it.scoped("overview, instances, an instance, the dead letter retried from the page", () =>
    Effect.gen(function*() {
      assert.strictEqual(run.status, 0, `npm start failed:\n${run.stdout}\n${run.stderr}`)
      mkdirSync(screenshots, { recursive: true })
      const console = yield* IronflowConsole.Console
      const store = yield* WorkflowStore.WorkflowStore
      const browser = yield* launch
      const page = yield* Effect.promise(() => browser.newPage({ viewport: { width: 1280, height: 900 } }))
      const go = (path: string) => Effect.promise(() => page.goto(`${console.url}${path}`))

      // Overview: the order type's figures are the database's.
      yield* go("/")
      const [counts] = (yield* store.instanceCounts).filter((c) => c.workflowType === OrderWorkflow.type)
      const deadCount = yield* store.countDeadLetters("effect", { workflowType: OrderWorkflow.type })
      assert.strictEqual(counts!.active + counts!.completed, 6, "the example places six orders")
      assert.strictEqual(yield* text(page, `tr[data-type="order"] td[data-col="active"]`), String(counts!.active))
      assert.strictEqual(yield* text(page, `tr[data-type="order"] td[data-col="completed"]`), String(counts!.completed))
      assert.strictEqual(yield* text(page, `tr[data-type="order"] td[data-col="deadLetters"]`), String(deadCount))
      assert.strictEqual(deadCount, 1)
      yield* shoot(page, "overview")

      // Instances, then the order that ended in a dead letter.
      yield* go("/instances?type=order")
      assert.strictEqual(yield* Effect.promise(() => page.locator("#instances tbody tr").count()), 6)
      yield* shoot(page, "instances")
      yield* Effect.promise(() => page.getByRole("link", { name: "run1-piano" }).click())
      yield* Effect.promise(() => page.waitForURL(/\/instance\?/))
      const events = yield* store.fetchEvents(OrderWorkflow.type, "run1-piano")
      assert.strictEqual(yield* Effect.promise(() => page.locator("#events tbody tr").count()), events.length)
      const timeline = yield* text(page, "#events")
      for (const name of ["OrderPlaced", "PaymentCaptured", "ShipmentRequested"]) assert.include(timeline, name)
      assert.strictEqual(
        yield* Effect.promise(() => page.locator(`svg.diagram g.state.current[data-state="shipping"]`).count()),
        1
      )
      assert.include(yield* text(page, "#state"), `"status": "shipping"`)
      yield* shoot(page, "instance")

      // Dead letters: select the piano's and retry it.
      yield* go("/dead-letters")
      const [letter] = yield* store.fetchDeadLetters("effect", { workflowId: "run1-piano" })
      assert.include(yield* text(page, "#dead-letters"), "CarrierRejected")
      yield* shoot(page, "dead-letters")
      yield* Effect.promise(() => page.locator(`input[type="checkbox"][value="effect:${letter!.id}"]`).check())
      yield* Effect.promise(() => page.getByRole("button", { name: "Retry selected" }).click())
      yield* Effect.promise(() => page.waitForURL(/retried=1/))
      assert.include(yield* text(page, `[role="status"]`), "Retried 1")
      yield* shoot(page, "dead-letters-retried")

      // The runtime runs it: the piano ships and the instance completes.
      yield* TestRuntime.awaitTerminal(OrderWorkflow, "run1-piano", { timeout: "30 seconds" })
      yield* go("/instance?type=order&id=run1-piano")
      assert.include(yield* text(page, "#events"), "OrderShipped")
      assert.strictEqual(
        yield* Effect.promise(() => page.locator(`svg.diagram g.state.current[data-state="shipped"]`).count()),
        1
      )
      yield* shoot(page, "instance-after-retry")
      assert.strictEqual(yield* store.countDeadLetters("effect", { workflowType: OrderWorkflow.type }), 0)
    }), 150_000)
})
