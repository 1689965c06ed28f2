/**
 * State-machine diagrams as inline SVG, laid out by the console itself (no
 * browser-side library, no network): states in columns by their distance
 * from the initial state, transitions as curves labelled with their input.
 * Without a definition, an instance's event path is drawn instead.
 *
 * @internal
 */
import type * as StateMachineView from "../../StateMachineView.js"
import { escape, type Html, raw } from "./html.js"

const nodeWidth = 150
const nodeHeight = 40
const rowGap = 100
const margin = 48
/** Room above the first row for arcs back to earlier states and their labels. */
const topMargin = 96

interface Placed {
  readonly name: string
  readonly x: number
  readonly y: number
  readonly rank: number
  readonly terminal: boolean
}

const ranks = (definition: StateMachineView.StateMachineDefinition) => {
  const names = new Set<string>([definition.initialState])
  for (const s of definition.states) names.add(s.name)
  for (const t of definition.transitions) {
    names.add(t.from)
    names.add(t.to)
  }
  const rank = new Map<string, number>([[definition.initialState, 0]])
  const queue = [definition.initialState]
  while (queue.length > 0) {
    const from = queue.shift()!
    for (const t of definition.transitions) {
      if (t.from === from && !rank.has(t.to)) {
        rank.set(t.to, rank.get(from)! + 1)
        queue.push(t.to)
      }
    }
  }
  const unreached = Math.max(...rank.values()) + 1
  return [...names].map((name) => ({ name, rank: rank.get(name) ?? unreached }))
}

/** The whole state machine, the `current` state filled in. */
export const stateMachine = (
  definition: StateMachineView.StateMachineDefinition,
  current: string | undefined
): Html => {
  const terminal = new Set(definition.states.filter((s) => s.isTerminal).map((s) => s.name))
  // Transitions between the same two states share one curve and stack their labels.
  const edges = new Map<string, { from: string; to: string; labels: Array<string> }>()
  for (const t of definition.transitions) {
    const id = `${t.from}\u0000${t.to}`
    const edge = edges.get(id) ?? { from: t.from, to: t.to, labels: [] }
    edge.labels.push(
      [t.input, ...t.effects.map((e) => `[${e}]`), ...t.timers.map((timer) => `timer ${timer}`)].join(" ")
    )
    edges.set(id, edge)
  }
  const longest = Math.max(0, ...[...edges.values()].flatMap((e) => e.labels.map((l) => l.length)))
  const gap = nodeWidth + Math.max(80, Math.min(320, longest * 6.4 + 24))
  const byRank = new Map<number, Array<string>>()
  for (const { name, rank } of ranks(definition)) byRank.set(rank, [...(byRank.get(rank) ?? []), name])
  const placed = new Map<string, Placed>()
  for (const [rank, names] of byRank) {
    names.forEach((name, row) =>
      placed.set(name, {
        name,
        rank,
        x: margin + rank * gap,
        y: topMargin + row * rowGap,
        terminal: terminal.has(name)
      })
    )
  }
  const width = margin * 2 + Math.max(...byRank.keys()) * gap + nodeWidth
  const height = topMargin + margin + (Math.max(...[...byRank.values()].map((n) => n.length)) - 1) * rowGap + nodeHeight
  const lines: Array<string> = []
  const labels: Array<string> = []
  const label = (x: number, y: number, text: string, anchor = "middle") =>
    labels.push(`<text x="${x}" y="${y}" class="edge-label" text-anchor="${anchor}">${escape(text)}</text>`)
  for (const edge of edges.values()) {
    const from = placed.get(edge.from)!
    const to = placed.get(edge.to)!
    let d: string
    if (to.rank > from.rank) {
      const x1 = from.x + nodeWidth
      const y1 = from.y + nodeHeight / 2
      const x2 = to.x
      const y2 = to.y + nodeHeight / 2
      d = `M ${x1} ${y1} C ${x1 + 50} ${y1}, ${x2 - 50} ${y2}, ${x2} ${y2}`
      const lx = (x1 + x2) / 2
      const ly = (y1 + y2) / 2 - 8 - (edge.labels.length - 1) * 13
      edge.labels.forEach((text, i) => label(lx, ly + i * 13, text))
    } else if (to.rank === from.rank && to !== from) {
      // Same column: straight down (or up) between the two boxes, labels to the right.
      const down = to.y > from.y
      const x = from.x + nodeWidth / 2
      const y1 = down ? from.y + nodeHeight : from.y
      const y2 = down ? to.y : to.y + nodeHeight
      d = `M ${x} ${y1} L ${x} ${y2}`
      const ly = (y1 + y2) / 2 - (edge.labels.length - 1) * 6.5 + 4
      edge.labels.forEach((text, i) => label(x + 8, ly + i * 13, text, "start"))
    } else {
      // Back to an earlier column (or to itself): an arc over the boxes.
      const x1 = from.x + nodeWidth / 2
      const x2 = to.x + nodeWidth / 2 + (to === from ? 30 : 0)
      const y1 = from.y
      const y2 = to.y
      const top = Math.min(y1, y2) - 40
      d = `M ${x1} ${y1} C ${x1} ${top}, ${x2} ${top}, ${x2} ${y2}`
      edge.labels.forEach((text, i) => label((x1 + x2) / 2, top + 6 - (edge.labels.length - 1 - i) * 13, text))
    }
    lines.push(`<path d="${d}" class="edge" marker-end="url(#arrow)"/>`)
  }
  const nodes: Array<string> = []
  for (const node of placed.values()) {
    const classes = ["state", node.terminal ? "terminal" : "", node.name === current ? "current" : ""].filter((c) =>
      c !== ""
    ).join(" ")
    nodes.push(
      `<g class="${classes}" data-state="${escape(node.name)}">` +
        `<rect x="${node.x}" y="${node.y}" width="${nodeWidth}" height="${nodeHeight}" rx="8"/>` +
        (node.terminal
          ? `<rect x="${node.x + 3}" y="${node.y + 3}" width="${nodeWidth - 6}" height="${
            nodeHeight - 6
          }" rx="6" class="inner"/>`
          : "") +
        `<text x="${node.x + nodeWidth / 2}" y="${node.y + nodeHeight / 2 + 4}" text-anchor="middle">${
          escape(node.name)
        }</text></g>`
    )
  }
  const initial = placed.get(definition.initialState)!
  lines.push(
    `<circle cx="${initial.x - 22}" cy="${initial.y + nodeHeight / 2}" r="6" class="start"/>`,
    `<path d="M ${initial.x - 16} ${initial.y + nodeHeight / 2} L ${initial.x} ${
      initial.y + nodeHeight / 2
    }" class="edge" marker-end="url(#arrow)"/>`
  )
  // Labels last, over curves and boxes, each on a white halo so crossings stay legible.
  return svg(width, height, [...lines, ...nodes, ...labels], "state machine")
}

/** An instance's events in order, when no state machine is known for its type. */
export const eventPath = (eventNames: ReadonlyArray<string>): Html => {
  const shown = eventNames.length > 24 ? [...eventNames.slice(0, 23), `… ${eventNames.length - 23} more`] : eventNames
  const perRow = 6
  const parts: Array<string> = []
  shown.forEach((name, i) => {
    const x = margin + (i % perRow) * (nodeWidth + 40)
    const y = margin + Math.floor(i / perRow) * rowGap
    parts.push(
      `<g class="state${
        i === shown.length - 1 ? " current" : ""
      }"><rect x="${x}" y="${y}" width="${nodeWidth}" height="${nodeHeight}" rx="8"/>` +
        `<text x="${x + nodeWidth / 2}" y="${y + nodeHeight / 2 + 4}" text-anchor="middle">${
          escape(`${i + 1}. ${name}`)
        }</text></g>`
    )
    if (i < shown.length - 1 && (i + 1) % perRow !== 0) {
      parts.push(
        `<path d="M ${x + nodeWidth} ${y + nodeHeight / 2} L ${x + nodeWidth + 40} ${
          y + nodeHeight / 2
        }" class="edge" marker-end="url(#arrow)"/>`
      )
    }
  })
  const rows = Math.max(1, Math.ceil(shown.length / perRow))
  const width = margin * 2 + Math.min(Math.max(shown.length, 1), perRow) * (nodeWidth + 40)
  return svg(width, margin * 2 + (rows - 1) * rowGap + nodeHeight, parts, "event path")
}

const svg = (width: number, height: number, parts: ReadonlyArray<string>, label: string): Html =>
  raw(
    `<svg xmlns="http://www.w3.org/2000/svg" class="diagram" role="img" aria-label="${label}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">` +
      `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/></marker></defs>` +
      parts.join("") + `</svg>`
  )
