/**
 * The console's HTML pages, rendered on the server from the same values the
 * JSON API returns. No scripts: the Content-Security-Policy forbids them, so
 * selection is a form of checkboxes and the overview refreshes with a meta
 * refresh.
 *
 * @internal
 */
import type * as ConsoleApi from "../../ConsoleApi.js"
import { escape, type Html, html, json, query, raw } from "./html.js"

/** What every page needs besides its own content. @internal */
export interface Frame {
  readonly csrfToken: string
  readonly readOnly: boolean
  readonly signedIn: boolean
}

const style = raw(`
:root { --fg:#1d232b; --muted:#5d6875; --line:#dde2e8; --bg:#f6f8fa; --accent:#2456a6; --bad:#b42318; --ok:#1a7f37; }
* { box-sizing: border-box; }
body { margin:0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; gap:24px; align-items:center; padding:10px 24px; background:#1d232b; color:#fff; }
header a { color:#cfd8e3; text-decoration:none; } header a:hover, header a.here { color:#fff; }
header .brand { font-weight:700; color:#fff; margin-right:12px; }
header .mode { margin-left:auto; font-size:12px; color:#cfd8e3; }
main { padding:20px 24px 48px; max-width:1400px; }
h1 { font-size:20px; margin:0 0 16px; } h2 { font-size:16px; margin:28px 0 10px; }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line); }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#eef1f5; font-weight:600; font-size:12px; text-transform:uppercase; letter-spacing:.02em; color:var(--muted); }
td.num, th.num { text-align:right; font-variant-numeric: tabular-nums; }
td.bad { color:var(--bad); font-weight:600; }
pre { margin:0; white-space:pre-wrap; word-break:break-word; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
pre.error { color:var(--bad); max-height:16em; overflow:auto; }
.muted { color:var(--muted); } .ok { color:var(--ok); }
.cards { display:flex; gap:12px; flex-wrap:wrap; margin-bottom:8px; }
.card { background:#fff; border:1px solid var(--line); border-radius:6px; padding:10px 14px; min-width:140px; }
.card b { display:block; font-size:22px; } .card span { color:var(--muted); font-size:12px; }
form.filters { display:flex; gap:8px; align-items:end; flex-wrap:wrap; margin-bottom:12px; }
label { font-size:12px; color:var(--muted); display:flex; flex-direction:column; gap:2px; }
input, select, button { font:inherit; padding:4px 8px; border:1px solid #b8c1cc; border-radius:4px; background:#fff; }
button { background:var(--accent); color:#fff; border-color:var(--accent); cursor:pointer; }
.pager { margin-top:10px; display:flex; gap:16px; }
.notice { padding:8px 12px; border-radius:4px; background:#e6f4ea; border:1px solid #b7dfc1; margin-bottom:12px; }
.notice.bad { background:#fdecea; border-color:#f5c2bd; }
svg.diagram { background:#fff; border:1px solid var(--line); border-radius:6px; max-width:100%; height:auto; }
svg.diagram .state rect { fill:#fff; stroke:#5d6875; stroke-width:1.5; }
svg.diagram .state.terminal rect.inner { fill:none; stroke:#5d6875; }
svg.diagram .state.current rect { fill:#dbe7fb; stroke:var(--accent); stroke-width:2.5; }
svg.diagram text { font: 13px system-ui, sans-serif; fill:var(--fg); }
svg.diagram .edge { fill:none; stroke:#8a96a3; stroke-width:1.3; }
svg.diagram .edge-label { font-size:11px; fill:var(--muted); paint-order:stroke; stroke:#fff; stroke-width:4px; stroke-linejoin:round; }
svg.diagram marker path, svg.diagram .start { fill:#5d6875; }
svg.chart rect.effects { fill:#2456a6; } svg.chart rect.timers { fill:#8fb0e3; }
svg.chart text { font: 11px system-ui, sans-serif; fill:var(--muted); }
`)

const nav = (here: string, frame: Frame) =>
  html`<header><span class="brand">ironflow console</span>
${
    [["/", "Overview"], ["/instances", "Instances"], ["/dead-letters", "Dead letters"]].map(([href, label]) =>
      html`<a href="${href}" class="${href === here ? "here" : ""}">${label}</a>`
    )
  }
<span class="mode">${frame.readOnly ? "read-only" : ""}</span></header>`

/** A whole page. @internal */
export const layout = (options: {
  readonly title: string
  readonly here: string
  readonly frame: Frame
  readonly body: Html
  readonly refreshSeconds?: number | undefined
}): string =>
  html`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${options.frame.csrfToken}">
${
    options.refreshSeconds === undefined
      ? ""
      : html`<meta http-equiv="refresh" content="${options.refreshSeconds}">`
  }
<title>${options.title} · ironflow</title><style>${style}</style></head>
<body>${nav(options.here, options.frame)}<main>${options.body}</main></body></html>`.value

const date = (d: Date | null | undefined) => d === null || d === undefined ? "-" : d.toISOString()
const firstLine = (text: string | null) => text === null ? "-" : text.split("\n")[0]
const instanceLink = (workflowType: string, workflowId: string) =>
  html`<a href="/instance${query({ type: workflowType, id: workflowId })}">${workflowId}</a>`

const throughputChart = (minutes: ReadonlyArray<ConsoleApi.ThroughputMinute>): Html => {
  const width = 640
  const height = 140
  const top = 10
  const bottom = 24
  const barArea = height - top - bottom
  const max = Math.max(1, ...minutes.map((m) => m.effects + m.timers))
  const step = width / Math.max(1, minutes.length)
  const bars = minutes.map((m, i) => {
    const effects = (m.effects / max) * barArea
    const timers = (m.timers / max) * barArea
    const x = i * step + 2
    const w = Math.max(1, step - 4)
    const base = height - bottom
    return `<g><title>${
      escape(`${m.minute.toISOString().slice(11, 16)}: ${m.effects} effects, ${m.timers} timers`)
    }</title>` +
      `<rect class="effects" x="${x}" y="${base - effects}" width="${w}" height="${effects}"/>` +
      `<rect class="timers" x="${x}" y="${base - effects - timers}" width="${w}" height="${timers}"/></g>`
  })
  const first = minutes[0]?.minute.toISOString().slice(11, 16) ?? ""
  const last = minutes[minutes.length - 1]?.minute.toISOString().slice(11, 16) ?? ""
  return raw(
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="throughput per minute" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
      bars.join("") +
      `<text x="0" y="${height - 6}">${escape(first)} UTC</text>` +
      `<text x="${width}" y="${height - 6}" text-anchor="end">${escape(last)}</text>` +
      `<text x="${width}" y="${top + 2}" text-anchor="end">max ${max}/min</text></svg>`
  )
}

/** @internal */
export const overview = (data: ConsoleApi.Overview, frame: Frame, refreshSeconds: number): string => {
  const sum = (f: (t: ConsoleApi.TypeOverview) => number) => data.types.reduce((n, t) => n + f(t), 0)
  const card = (value: number, label: string, id: string) =>
    html`<div class="card" data-figure="${id}"><b>${value}</b><span>${label}</span></div>`
  const perMinute = data.throughput.reduce((n, m) => n + m.effects + m.timers, 0)
  const body = html`<h1>Overview</h1>
<div class="cards">
${card(sum((t) => t.activeInstances), "active instances", "active")}
${card(sum((t) => t.completedInstances), "completed instances", "completed")}
${card(sum((t) => t.readyEffects), "ready effects", "ready")}
${card(sum((t) => t.dueTimers), "due timers", "due")}
${card(sum((t) => t.deadLetters), "dead letters", "dead")}
${card(data.liveWorkers.length, "live workers", "workers")}
</div>
<h2>Workflow types</h2>
${
    data.types.length === 0
      ? html`<p class="muted">No workflow instances yet.</p>`
      : html`<table id="types"><thead><tr><th>type</th><th class="num">active</th><th class="num">completed</th>
<th class="num">pending effects</th><th class="num">ready effects</th><th class="num">pending timers</th>
<th class="num">due timers</th><th class="num">expired leases</th><th class="num">held &gt; 1 min</th>
<th class="num">dead letters</th><th class="num">timed out</th><th>live worker</th></tr></thead><tbody>
${
        data.types.map((t) =>
          html`<tr data-type="${t.workflowType}"><td><a href="/instances${
            query({ type: t.workflowType })
          }">${t.workflowType}</a></td>
<td class="num" data-col="active">${t.activeInstances}</td><td class="num" data-col="completed">${t.completedInstances}</td>
<td class="num" data-col="pendingEffects">${t.pendingEffects}</td><td class="num" data-col="readyEffects">${t.readyEffects}</td>
<td class="num" data-col="pendingTimers">${t.pendingTimers}</td><td class="num" data-col="dueTimers">${t.dueTimers}</td>
<td class="num${t.expiredLeases > 0 ? " bad" : ""}" data-col="expiredLeases">${t.expiredLeases}</td>
<td class="num${t.longRunning > 0 ? " bad" : ""}" data-col="longRunning">${t.longRunning}</td>
<td class="num${t.deadLetters > 0 ? " bad" : ""}" data-col="deadLetters">${
            t.deadLetters > 0
              ? html`<a href="/dead-letters${query({ type: t.workflowType })}">${t.deadLetters}</a>`
              : "0"
          }</td>
<td class="num" data-col="timedOutAttempts">${t.timedOutAttempts}</td>
<td>${t.runByLiveWorker ? html`<span class="ok">yes</span>` : html`<span class="muted">no</span>`}</td></tr>`
        )
      }</tbody></table>`
  }
<h2>Throughput, last ${data.throughput.length} minutes <span class="muted">(${perMinute} effects and timers processed)</span></h2>
${throughputChart(data.throughput)}
<h2>Live workers</h2>
${
    data.liveWorkers.length === 0
      ? html`<p class="muted">No live runtime has announced itself.</p>`
      : html`<table id="workers"><thead><tr><th>worker</th><th>host</th><th class="num">pid</th><th>types</th>
<th>started</th><th>heartbeat</th><th>clock</th></tr></thead><tbody>${
        data.liveWorkers.map((w) =>
          html`<tr><td>${w.workerId}</td><td>${w.host}</td><td class="num">${w.pid}</td><td>${
            w.workflowTypes.join(", ")
          }</td>
<td>${date(w.startedAt)}</td><td>${date(w.heartbeatAt)}</td><td${w.claimsPaused === null ? "" : raw(` class="bad"`)}>${
            w.claimsPaused === null
              ? (w.clockOffsetMillis === null ? "-" : `${Math.round(w.clockOffsetMillis)} ms`)
              : `CLAIMS PAUSED: ${w.claimsPaused}`
          }</td></tr>`
        )
      }</tbody></table>`
  }
<h2>Projections</h2>
${
    data.projections.length === 0
      ? html`<p class="muted">No projection checkpoints.</p>`
      : html`<table id="projections"><thead><tr><th>projection</th><th class="num">events behind</th><th>updated</th></tr></thead><tbody>${
        data.projections.map((p) =>
          html`<tr><td>${p.name}</td><td class="num">${p.eventsBehind}</td><td>${date(p.updatedAt)}</td></tr>`
        )
      }</tbody></table>`
  }
<p class="muted">Read at ${date(data.at)}; refreshes every ${refreshSeconds} s.</p>`
  return layout({ title: "Overview", here: "/", frame, body, refreshSeconds })
}

/** @internal */
export const instances = (
  page: ConsoleApi.InstancePage,
  filters: {
    readonly type?: string | undefined
    readonly prefix?: string | undefined
    readonly status?: string | undefined
  },
  types: ReadonlyArray<string>,
  frame: Frame
): string => {
  const pageLink = (offset: number) =>
    `/instances${query({ ...filters, limit: page.limit, offset: offset === 0 ? undefined : offset })}`
  const body = html`<h1>Instances</h1>
<form class="filters" method="get" action="/instances">
<label>type<select name="type"><option value="">any</option>${
    types.map((t) => html`<option value="${t}"${t === filters.type ? raw(" selected") : ""}>${t}</option>`)
  }</select></label>
<label>id prefix<input name="prefix" value="${filters.prefix ?? ""}"></label>
<label>status<select name="status">${
    [["", "any"], ["active", "active"], ["completed", "completed"]].map(([value, label]) =>
      html`<option value="${value}"${value === (filters.status ?? "") ? raw(" selected") : ""}>${label}</option>`
    )
  }</select></label>
<button type="submit">Filter</button></form>
${
    page.items.length === 0
      ? html`<p class="muted">No instances match.</p>`
      : html`<table id="instances"><thead><tr><th>type</th><th>id</th><th class="num">events</th><th>created</th>
<th>last event</th><th>status</th></tr></thead><tbody>${
        page.items.map((i) =>
          html`<tr><td>${i.workflowType}</td><td>${instanceLink(i.workflowType, i.workflowId)}</td>
<td class="num">${i.eventCount}</td><td>${date(i.createdAt)}</td><td>${date(i.lastEventAt)}</td>
<td>${
            i.completedAt === null
              ? "active"
              : html`completed ${date(i.completedAt)}`
          }</td></tr>`
        )
      }</tbody></table>`
  }
<div class="pager">${
    page.offset > 0 ? html`<a href="${pageLink(Math.max(0, page.offset - page.limit))}">← newer</a>` : ""
  }${page.more ? html`<a href="${pageLink(page.offset + page.limit)}" rel="next">older →</a>` : ""}
<span class="muted">rows ${page.items.length === 0 ? 0 : page.offset + 1}–${
    page.offset + page.items.length
  }</span></div>`
  return layout({ title: "Instances", here: "/instances", frame, body })
}

const retryForm = (frame: Frame, rows: ReadonlyArray<{ kind: string; id: string }>, label: string, back: string) =>
  frame.readOnly ? "" : html`<form method="post" action="/dead-letters/retry">
<input type="hidden" name="csrf" value="${frame.csrfToken}"><input type="hidden" name="back" value="${back}">
${rows.map((r) => html`<input type="hidden" name="item" value="${`${r.kind}:${r.id}`}">`)}
<button type="submit">${label}</button></form>`

const deadLetterRows = (letters: ReadonlyArray<ConsoleApi.DeadLetter>, frame: Frame, selectable: boolean) =>
  html`<table id="dead-letters"><thead><tr>${
    selectable && !frame.readOnly ? html`<th></th>` : ""
  }<th>kind</th><th>type</th><th>workflow id</th><th class="num">attempts</th><th>dead since</th><th>error</th><th>payload</th>${
    selectable && !frame.readOnly ? html`<th></th>` : ""
  }</tr></thead><tbody>${
    letters.map((l) =>
      html`<tr data-id="${l.id}">${
        selectable && !frame.readOnly
          ? html`<td><input type="checkbox" name="item" value="${`${l.kind}:${l.id}`}" aria-label="select ${l.id}"></td>`
          : ""
      }<td>${l.kind}</td><td>${l.workflowType}</td><td>${instanceLink(l.workflowType, l.workflowId)}</td>
<td class="num">${l.attempts}</td><td>${date(l.deadLetteredAt)}</td>
<td><details><summary>${firstLine(l.lastError)}</summary><pre class="error">${l.lastError ?? ""}</pre></details></td>
<td><pre>${json(l.payload)}</pre></td>${
        selectable && !frame.readOnly
          ? html`<td><button type="submit" formaction="/dead-letters/retry${
            query({ one: `${l.kind}:${l.id}` })
          }" aria-label="retry ${l.id}">Retry</button></td>`
          : ""
      }</tr>`
    )
  }</tbody></table>`

/** @internal */
export const deadLetters = (
  page: ConsoleApi.DeadLetterPage,
  filters: { readonly kind?: string | undefined; readonly type?: string | undefined; readonly id?: string | undefined },
  notice: { readonly retried: number; readonly notDead: number } | undefined,
  frame: Frame
): string => {
  const pageLink = (offset: number) =>
    `/dead-letters${query({ ...filters, limit: page.limit, offset: offset === 0 ? undefined : offset })}`
  const back = `/dead-letters${query(filters)}`
  const body = html`<h1>Dead letters <span class="muted">(${page.total})</span></h1>
${
    notice === undefined ?
      "" :
      html`<div class="notice${notice.notDead > 0 ? " bad" : ""}" role="status">Retried ${notice.retried}${
        notice.notDead > 0 ? html`; ${notice.notDead} were no longer dead letters and were left alone` : ""
      }.</div>`
  }
<form class="filters" method="get" action="/dead-letters">
<label>kind<select name="kind">${
    [["", "effects and timers"], ["effect", "effects"], ["timer", "timers"]].map(([value, label]) =>
      html`<option value="${value}"${value === (filters.kind ?? "") ? raw(" selected") : ""}>${label}</option>`
    )
  }</select></label>
<label>type<input name="type" value="${filters.type ?? ""}"></label>
<label>workflow id<input name="id" value="${filters.id ?? ""}"></label>
<button type="submit">Filter</button></form>
${
    page.items.length === 0
      ? html`<p class="muted">No dead letters.</p>`
      : frame.readOnly
      ? deadLetterRows(page.items, frame, false)
      : html`<form method="post" action="/dead-letters/retry" id="retry-selection">
<input type="hidden" name="csrf" value="${frame.csrfToken}"><input type="hidden" name="back" value="${back}">
${deadLetterRows(page.items, frame, true)}
<p><button type="submit" name="selection" value="1">Retry selected</button></p></form>
${retryForm(frame, page.items, `Retry all ${page.items.length} shown`, back)}`
  }
<div class="pager">${
    page.offset > 0 ? html`<a href="${pageLink(Math.max(0, page.offset - page.limit))}">← newer</a>` : ""
  }${
    page.offset + page.items.length < page.total
      ? html`<a href="${pageLink(page.offset + page.limit)}">older →</a>`
      : ""
  }</div>`
  return layout({ title: "Dead letters", here: "/dead-letters", frame, body })
}

/** A long-lived instance's page stays light: its latest events only. */
const eventsShown = 500

/** @internal */
export const instance = (detail: ConsoleApi.InstanceDetail, diagram: Html, frame: Frame): string => {
  const i = detail.instance
  const back = `/instance${query({ type: i.workflowType, id: i.workflowId })}`
  const body =
    html`<h1>${i.workflowType} <span class="muted">/</span> <span id="instance-id">${i.workflowId}</span></h1>
<div class="cards">
<div class="card"><b>${i.completedAt === null ? "active" : "completed"}</b><span>${
      i.completedAt === null ? `last event ${date(i.lastEventAt)}` : date(i.completedAt)
    }</span></div>
${detail.status === null ? "" : html`<div class="card"><b>${detail.status}</b><span>status</span></div>`}
<div class="card"><b>${i.eventCount}</b><span>events</span></div>
<div class="card"><b>${detail.pending.length}</b><span>pending effects and timers</span></div>
<div class="card"><b>${detail.deadLetters.length}</b><span>dead letters</span></div>
</div>
<h2>Diagram</h2>
${diagram}
<h2>State</h2>
${
      detail.stateSource === "definitions"
        ? html`<pre id="state">${json(detail.state)}</pre>`
        : detail.stateSource === "failed"
        ? html`<pre class="error">${detail.stateError ?? ""}</pre>`
        : html`<p class="muted">The console has no definition of this workflow type: run it inside the application (Console.layer), or pass --workflows MODULE.</p>`
    }
<h2>Events${
      detail.events.length > eventsShown
        ? html` <span class="muted">(the last ${eventsShown} of ${detail.events.length}; all of them in the JSON API)</span>`
        : ""
    }</h2>
<table id="events"><thead><tr><th class="num">seq</th><th class="num">global</th><th>at</th><th>event</th></tr></thead><tbody>${
      detail.events.slice(-eventsShown).map((e) =>
        html`<tr><td class="num">${e.sequence}</td><td class="num">${e.globalSequence}</td><td>${
          date(e.createdAt)
        }</td><td><pre>${json(e.payload)}</pre></td></tr>`
      )
    }</tbody></table>
<h2>Pending effects and timers</h2>
${
      detail.pending.length === 0
        ? html`<p class="muted">None.</p>`
        : html`<table id="pending"><thead><tr><th>kind</th><th>id</th><th>due</th><th class="num">attempts</th><th>key</th>
<th>leased by</th><th>last error</th><th>payload</th></tr></thead><tbody>${
          detail.pending.map((p) =>
            html`<tr><td>${p.kind}</td><td>${p.id}</td><td>${date(p.dueAt)}</td><td class="num">${p.attempts}</td>
<td>${p.key ?? "-"}</td><td>${p.lockedBy ?? "-"}</td><td><pre class="error">${p.lastError ?? ""}</pre></td><td><pre>${
              json(p.payload)
            }</pre></td></tr>`
          )
        }</tbody></table>`
    }
<h2>Dead letters</h2>
${
      detail.deadLetters.length === 0 ?
        html`<p class="muted">None.</p>` :
        html`${deadLetterRows(detail.deadLetters, frame, false)}
${retryForm(frame, detail.deadLetters, "Retry these dead letters", back)}`
    }
<h2>Observations</h2>
${
      detail.observations.length === 0
        ? html`<p class="muted">None recorded.</p>`
        : html`<table id="observations"><thead><tr><th>at</th><th>input</th><th>outcome</th><th>payload</th></tr></thead><tbody>${
          detail.observations.map((o) =>
            html`<tr><td>${date(o.observedAt)}</td><td>${o.inputType}</td><td>${o.outcome}${
              o.rejection === null || o.rejection === undefined ? "" : html`<pre>${json(o.rejection)}</pre>`
            }</td><td><pre>${json(o.payload)}</pre></td></tr>`
          )
        }</tbody></table>`
    }`
  return layout({ title: `${i.workflowType} ${i.workflowId}`, here: "/instances", frame, body })
}

/** @internal */
export const login = (frame: Frame, failed: boolean): string =>
  layout({
    title: "Sign in",
    here: "/login",
    frame,
    body: html`<h1>Sign in</h1>
${failed ? html`<div class="notice bad" role="alert">That token is not the console's token.</div>` : ""}
<form method="post" action="/login"><input type="hidden" name="csrf" value="${frame.csrfToken}">
<label>console token (IRONFLOW_CONSOLE_TOKEN)<input type="password" name="token" autocomplete="current-password" autofocus></label>
<p><button type="submit">Sign in</button></p></form>`
  })

/** @internal */
export const problem = (frame: Frame, title: string, message: string): string =>
  layout({
    title,
    here: "",
    frame,
    body: html`<h1>${title}</h1><p>${message}</p><p><a href="/">Back to the overview</a></p>`
  })
