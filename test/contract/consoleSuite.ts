/**
 * The web console over HTTP (issue #13 items 1, 2 and 4's `/metrics`), on a
 * running runtime over real PostgreSQL or the embedded PGlite: the JSON API
 * against the database, escaping of user data, CSRF and origin checks, the
 * token, read-only mode, retrying dead letters, the Prometheus scrape. The
 * clock is real (the console and the runtime run as in production).
 */
import { SqlClient } from "@effect/sql"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, type Layer, Redacted } from "effect"
import { TestRuntime, WorkflowService, WorkflowStore } from "ironflow"
import * as IronflowConsole from "ironflow/Console"
import { makeConsoleWorkflow, markupError, Start, Touch } from "../support/consoleFixtures.js"
import { csrfOf, getJson, postForm, request } from "../support/consoleHttp.js"
import { assertBackend } from "../support/database.js"

export const suite = (label: string, database: Layer.Layer<SqlClient.SqlClient, unknown>) => {
  const type = `console_${label}_${Math.random().toString(36).slice(2, 8)}`
  const fixture = makeConsoleWorkflow(type)
  const runtime = TestRuntime.layer({ handlers: [fixture.handler], database })

  const start = (id: string, note = "n") =>
    Effect.flatMap(
      WorkflowService.WorkflowService,
      (service) => service.execute(fixture.workflow, new Start({ id, note }))
    )

  const deadLetterOf = (id: string) =>
    TestRuntime.awaitDeadLetters({ workflowType: type, workflowId: id }, { timeout: "20 seconds" })

  const open = (options: IronflowConsole.Options = {}) =>
    IronflowConsole.make({ port: 0, views: [fixture.view], ...options })

  layer(runtime, { excludeTestServices: true, timeout: 120_000 })(`Console (${label})`, (it) => {
    it.effect("runs on the backend its label names", () => assertBackend(label))

    describe("the JSON API", () => {
      it.scoped("the overview's figures are the database's", () =>
        Effect.gen(function*() {
          yield* start("overview-dead")
          yield* deadLetterOf("overview-dead")
          const console = yield* open()
          const sql = yield* SqlClient.SqlClient
          const overview = yield* getJson(`${console.url}/api/overview`)
          const row = overview.types.find((t: { workflowType: string }) => t.workflowType === type)
          const [counts] = yield* sql<{ active: string; completed: string; dead: string }>`
            SELECT (SELECT count(*) FROM ironflow.workflow_instances WHERE workflow_type = ${type} AND completed_at IS NULL) AS active,
              (SELECT count(*) FROM ironflow.workflow_instances WHERE workflow_type = ${type} AND completed_at IS NOT NULL) AS completed,
              (SELECT count(*) FROM ironflow.outbox WHERE workflow_type = ${type} AND dead_lettered_at IS NOT NULL
                AND processed_at IS NULL) AS dead`
          assert.strictEqual(row.activeInstances, Number(counts.active))
          assert.strictEqual(row.completedInstances, Number(counts.completed))
          assert.strictEqual(row.deadLetters, Number(counts.dead))
          assert.isAtLeast(row.deadLetters, 1)
          assert.isTrue(row.runByLiveWorker)
          assert.isAtLeast(overview.liveWorkers.length, 1)
          assert.strictEqual(overview.throughput.length, 15)
          // The page shows the same numbers.
          const page = yield* request(`${console.url}/`)
          assert.strictEqual(page.status, 200)
          const cell = (column: string) =>
            new RegExp(`<tr data-type="${type}">[\\s\\S]*?data-col="${column}">(?:<a [^>]*>)?(\\d+)`).exec(page.body)
              ?.[1]
          assert.strictEqual(cell("active"), String(counts.active))
          assert.strictEqual(cell("deadLetters"), String(counts.dead))
          assert.include(page.body, `<meta http-equiv="refresh" content="5">`)
        }))

      it.scoped("instances filter by type, id prefix and status, and page", () =>
        Effect.gen(function*() {
          for (const n of [1, 2, 3]) yield* start(`page-a${n}`)
          yield* start("page-b1")
          const console = yield* open()
          const url = `${console.url}/api/instances?type=${type}&prefix=page-a`
          const first = yield* getJson(`${url}&limit=2`)
          assert.strictEqual(first.items.length, 2)
          assert.isTrue(first.more)
          const second = yield* getJson(`${url}&limit=2&offset=2`)
          assert.strictEqual(second.items.length, 1)
          assert.isFalse(second.more)
          const ids = [...first.items, ...second.items].map((i: { workflowId: string }) => i.workflowId).sort()
          assert.deepStrictEqual(ids, ["page-a1", "page-a2", "page-a3"])
          const completed = yield* getJson(`${url}&status=completed`)
          assert.deepStrictEqual(completed.items, [])
          const literal = yield* getJson(`${console.url}/api/instances?type=${type}&prefix=page_%25`)
          assert.deepStrictEqual(literal.items, [], "a prefix is literal text, not a LIKE pattern")
          const bad = yield* request(`${console.url}/api/instances?limit=0`)
          assert.strictEqual(bad.status, 400)
        }))

      it.scoped("documents itself: an OpenAPI document of the JSON endpoints (not the pages)", () =>
        Effect.gen(function*() {
          const console = yield* open()
          const spec = yield* getJson(`${console.url}/api/openapi.json`)
          assert.strictEqual(spec.info.title, "ironflow console")
          for (const path of ["/api/overview", "/api/instances", "/api/instance", "/api/dead-letters", "/metrics"]) {
            assert.property(spec.paths, path)
          }
          assert.property(spec.paths["/api/dead-letters/retry"], "post")
          assert.notProperty(spec.paths, "/dead-letters")
          assert.isTrue(Object.keys(spec.components.schemas).some((name) => name.endsWith("Overview")))
        }))

      it.scoped("one instance: typed state, events, dead letters; an unknown one is 404", () =>
        Effect.gen(function*() {
          yield* start("detail-1", "hello")
          yield* deadLetterOf("detail-1")
          const console = yield* open()
          const detail = yield* getJson(`${console.url}/api/instance?type=${type}&id=detail-1`)
          assert.strictEqual(detail.stateSource, "definitions")
          assert.deepStrictEqual(detail.state, { status: "started", note: "hello" })
          assert.strictEqual(detail.status, "started")
          assert.deepStrictEqual(detail.events.map((e: { payload: { type: string } }) => e.payload.type), ["Started"])
          assert.strictEqual(detail.deadLetters.length, 1)
          assert.include(detail.deadLetters[0].lastError, markupError)
          const missing = yield* request(`${console.url}/api/instance?type=${type}&id=nope`)
          assert.strictEqual(missing.status, 404)
          assert.strictEqual(JSON.parse(missing.body)._tag, "NotFound")
          const page = yield* request(`${console.url}/instance?type=${type}&id=detail-1`)
          assert.include(page.body, `class="state current" data-state="started"`, "the diagram marks the state")
        }))
    })

    it.scoped("a long instance's page shows its latest 500 events and says so", () =>
      Effect.gen(function*() {
        const service = yield* WorkflowService.WorkflowService
        for (let i = 0; i < 505; i++) yield* service.execute(fixture.workflow, new Touch({ id: "long-1" }))
        const console = yield* open()
        const page = yield* request(`${console.url}/instance?type=${type}&id=long-1`)
        const rows = page.body.slice(page.body.indexOf(`<table id="events">`)).split("</table>")[0]!
        assert.strictEqual(rows.split("<tr><td class=\"num\">").length - 1, 500)
        assert.include(page.body, "the last 500 of 505")
        assert.include(rows, `<td class="num">505</td>`)
        assert.notInclude(rows, `<td class="num">5</td><td class="num">`)
        const detail = yield* getJson(`${console.url}/api/instance?type=${type}&id=long-1`)
        assert.strictEqual(detail.events.length, 505)
      }))

    describe("safe by default", () => {
      it.scoped("ids, payloads and errors are escaped in every page; no script may run", () =>
        Effect.gen(function*() {
          const id = `<script>alert("id")</script>`
          yield* start(id, `<img src=x onerror=alert(1)>`)
          yield* deadLetterOf(id)
          const console = yield* open()
          const pages = [
            `/`,
            `/instances?type=${encodeURIComponent(type)}`,
            `/instance?type=${encodeURIComponent(type)}&id=${encodeURIComponent(id)}`,
            `/dead-letters?type=${encodeURIComponent(type)}`,
            `/dead-letters?type=${encodeURIComponent(`"><script>alert(2)</script>`)}`
          ]
          for (const path of pages) {
            const page = yield* request(`${console.url}${path}`)
            assert.strictEqual(page.status, 200, path)
            assert.notInclude(page.body, "<script", path)
            assert.notInclude(page.body, "<img src=x", path)
            assert.match(String(page.headers["content-security-policy"]), /default-src 'none'/)
            assert.strictEqual(page.headers["x-frame-options"], "DENY")
          }
          const instance = yield* request(`${console.url}${pages[2]}`)
          assert.include(instance.body, "&lt;script&gt;alert(&quot;id&quot;)&lt;/script&gt;")
          assert.include(instance.body, "&lt;img src=x onerror=alert(1)&gt;")
          assert.include(
            instance.body,
            "&lt;script&gt;alert(&quot;error&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;"
          )
        }))

      it.scoped("a retry needs the CSRF token and a same-origin request; with both it runs", () =>
        Effect.gen(function*() {
          yield* start("retry-1")
          const [letter] = yield* deadLetterOf("retry-1")
          const console = yield* open()
          const page = yield* request(`${console.url}/dead-letters?type=${type}&id=retry-1`)
          const csrf = csrfOf(page.body)
          const item = `effect:${letter.id}`
          const forged = yield* postForm(`${console.url}/dead-letters/retry`, [["csrf", "guess"], ["item", item]])
          assert.strictEqual(forged.status, 403)
          const crossSite = yield* postForm(`${console.url}/dead-letters/retry`, [["csrf", csrf], ["item", item]], {
            origin: "http://evil.example"
          })
          assert.strictEqual(crossSite.status, 403)
          const json = yield* request(`${console.url}/api/dead-letters/retry`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ items: [{ kind: "effect", id: letter.id }] })
          })
          assert.strictEqual(json.status, 400, "the JSON write needs its CSRF header")
          const store = yield* WorkflowStore.WorkflowStore
          assert.strictEqual(yield* store.countDeadLetters("effect", { workflowId: "retry-1" }), 1, "still dead")

          fixture.deliveries.healthy = true
          const retried = yield* postForm(`${console.url}/dead-letters/retry`, [
            ["csrf", csrf],
            ["back", `/dead-letters?type=${type}`],
            ["item", item],
            ["item", "effect:00000000-0000-0000-0000-000000000000"]
          ])
          assert.strictEqual(retried.status, 303)
          assert.strictEqual(retried.headers.location, `/dead-letters?type=${type}&retried=1&notDead=1`)
          yield* TestRuntime.awaitTerminal(fixture.workflow, "retry-1", { timeout: "20 seconds" })
          const notice = yield* request(`${console.url}${retried.headers.location}`)
          assert.include(notice.body, "Retried 1; 1 were no longer dead letters")
          fixture.deliveries.healthy = false
        }))

      it.scoped("a row's own Retry button retries that row only, whatever else is ticked", () =>
        Effect.gen(function*() {
          yield* start("one-a")
          yield* start("one-b")
          const [a] = yield* deadLetterOf("one-a")
          const [b] = yield* deadLetterOf("one-b")
          const console = yield* open()
          const page = yield* request(`${console.url}/dead-letters?type=${type}`)
          const action = `/dead-letters/retry?one=effect%3A${a!.id}`
          assert.include(page.body, `formaction="${action}"`)
          const reply = yield* postForm(`${console.url}${action}`, [
            ["csrf", csrfOf(page.body)],
            ["item", `effect:${b!.id}`]
          ])
          assert.strictEqual(reply.status, 303)
          assert.include(String(reply.headers.location), "retried=1&notDead=0")
          const store = yield* WorkflowStore.WorkflowStore
          assert.strictEqual(yield* store.countDeadLetters("effect", { workflowId: "one-b" }), 1, "b untouched")
        }))

      it.scoped("the JSON retry with the session's CSRF token", () =>
        Effect.gen(function*() {
          yield* start("retry-json")
          const [letter] = yield* deadLetterOf("retry-json")
          const console = yield* open()
          const session = yield* getJson(`${console.url}/api/session`)
          const reply = yield* request(`${console.url}/api/dead-letters/retry`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-ironflow-csrf": session.csrfToken },
            body: JSON.stringify({ items: [{ kind: "effect", id: letter.id }, { kind: "timer", id: "not-a-uuid" }] })
          })
          assert.strictEqual(reply.status, 200)
          assert.deepStrictEqual(JSON.parse(reply.body), {
            retried: [{ kind: "effect", id: letter.id }],
            notDead: [{ kind: "timer", id: "not-a-uuid" }]
          })
          // It fails again (the handler is unhealthy) and returns to the dead letters: it ran.
          yield* TestRuntime.awaitCondition(
            Effect.map(
              Effect.flatMap(WorkflowStore.WorkflowStore, (store) =>
                store.fetchDeadLetters("effect", { workflowId: "retry-json" })),
              (letters) =>
                letters.length === 1 && letters[0]!.deadLetteredAt > letter.deadLetteredAt
            ),
            { timeout: "20 seconds" }
          )
        }))

      it.scoped("a page from another host name (DNS rebinding) gets nothing", () =>
        Effect.gen(function*() {
          const console = yield* open()
          for (const path of ["/", "/api/session", "/metrics"]) {
            const reply = yield* request(`${console.url}${path}`, { headers: { host: "evil.example" } })
            assert.strictEqual(reply.status, 403, path)
            assert.notInclude(reply.body, "csrf")
          }
          const localhost = yield* request(`${console.url}/`, {
            headers: { host: `localhost:${new URL(console.url).port}` }
          })
          assert.strictEqual(localhost.status, 200)
        }))

      it.scoped("read-only: no retry forms, and writes are refused", () =>
        Effect.gen(function*() {
          yield* start("readonly-1")
          const [letter] = yield* deadLetterOf("readonly-1")
          const console = yield* open({ readOnly: true })
          const page = yield* request(`${console.url}/dead-letters?type=${type}`)
          assert.notInclude(page.body, `action="/dead-letters/retry"`)
          assert.include(page.body, "read-only")
          const form = yield* postForm(`${console.url}/dead-letters/retry`, [
            ["csrf", csrfOf(page.body)],
            ["item", `effect:${letter.id}`]
          ])
          assert.strictEqual(form.status, 403)
          const session = yield* getJson(`${console.url}/api/session`)
          assert.isTrue(session.readOnly)
          const json = yield* request(`${console.url}/api/dead-letters/retry`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-ironflow-csrf": session.csrfToken },
            body: JSON.stringify({ items: [{ kind: "effect", id: letter.id }] })
          })
          assert.strictEqual(json.status, 403)
          const store = yield* WorkflowStore.WorkflowStore
          assert.strictEqual(yield* store.countDeadLetters("effect", { workflowId: "readonly-1" }), 1)
        }))

      it.scoped("with a token: sign in first (a cookie that is not the token), or send it as a bearer", () =>
        Effect.gen(function*() {
          const token = "s3cret-console-token"
          const console = yield* open({ token: Redacted.make(token) })
          const anonymous = yield* request(`${console.url}/`)
          assert.strictEqual(anonymous.status, 303)
          assert.strictEqual(anonymous.headers.location, "/login")
          assert.strictEqual((yield* request(`${console.url}/api/overview`)).status, 401)
          assert.strictEqual((yield* request(`${console.url}/metrics`)).status, 401)
          const login = yield* request(`${console.url}/login`)
          assert.strictEqual(login.status, 200)
          const csrf = csrfOf(login.body)
          const wrong = yield* postForm(`${console.url}/login`, [["csrf", csrf], ["token", "guess"]])
          assert.strictEqual(wrong.status, 401)
          assert.isUndefined(wrong.headers["set-cookie"])
          const right = yield* postForm(`${console.url}/login`, [["csrf", csrf], ["token", token]])
          assert.strictEqual(right.status, 303)
          const cookie = String(right.headers["set-cookie"]).split(";")[0]!
          assert.notInclude(cookie, token)
          assert.include(String(right.headers["set-cookie"]), "HttpOnly")
          assert.include(String(right.headers["set-cookie"]), "SameSite=Strict")
          const signedIn = yield* request(`${console.url}/`, { headers: { cookie } })
          assert.strictEqual(signedIn.status, 200)
          assert.notInclude(signedIn.body, token)
          const bearer = yield* request(`${console.url}/api/overview`, {
            headers: { authorization: `Bearer ${token}` }
          })
          assert.strictEqual(bearer.status, 200)
          const badBearer = yield* request(`${console.url}/api/overview`, { headers: { authorization: "Bearer no" } })
          assert.strictEqual(badBearer.status, 401)
        }))

      it.scoped("binding beyond loopback without a token is refused at start", () =>
        Effect.gen(function*() {
          const refused = yield* Effect.flip(open({ host: "0.0.0.0" }))
          assert.strictEqual(refused._tag, "ConsoleError")
          assert.include(refused.message, "IRONFLOW_CONSOLE_TOKEN")
          const withToken = yield* open({ host: "0.0.0.0", token: Redacted.make("t") })
          assert.match(withToken.url, /^http:\/\/0\.0\.0\.0:\d+$/)
          const badPort = yield* Effect.flip(open({ port: 70_000 }))
          assert.include(badPort.message, "70000")
          const first = yield* open()
          const taken = yield* Effect.flip(open({ port: Number(new URL(first.url).port) }))
          assert.strictEqual(taken._tag, "ConsoleError")
          assert.include(taken.message, "cannot listen")
        }))
    })

    describe("/metrics", () => {
      it.scoped("serves the runtime's metrics and the queue gauges in the Prometheus text format", () =>
        Effect.gen(function*() {
          yield* start("metrics-1")
          yield* deadLetterOf("metrics-1")
          const console = yield* open()
          const reply = yield* request(`${console.url}/metrics`)
          assert.strictEqual(reply.status, 200)
          assert.match(String(reply.headers["content-type"]), /^text\/plain; version=0\.0\.4/)
          const lines = reply.body.trimEnd().split("\n")
          // Every line is a comment or `name{labels} value`.
          for (const line of lines) {
            assert.match(
              line,
              /^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+)$/,
              line
            )
          }
          assert.include(lines, "# TYPE ironflow_failed_attempts_total counter")
          assert.include(lines, "# TYPE ironflow_handler_duration_ms histogram")
          const dead = lines.find((l) =>
            l.startsWith("ironflow_dead_letters{") && l.includes(`workflow_type="${type}"`) &&
            l.includes(`kind="effect"`)
          )
          const store = yield* WorkflowStore.WorkflowStore
          const count = yield* store.countDeadLetters("effect", { workflowType: type })
          assert.strictEqual(dead?.split(" ").at(-1), String(count))
          const failed = lines.find((l) =>
            l.startsWith("ironflow_failed_attempts_total{") && l.includes(`workflow_type="${type}"`)
          )
          assert.isDefined(failed)
          assert.isAtLeast(Number(failed!.split(" ").at(-1)), 2)
        }))
    })
  })
}
