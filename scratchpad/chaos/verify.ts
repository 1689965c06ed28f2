/**
 * The checks every process scenario ends with, in SQL against ironflow's
 * tables (and the harness's own `chaos` schema): every instance terminal with
 * exactly its expected events, every effect and timer processed exactly once,
 * no lease left held, and the counts the report prints.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"
import { expectedEventTypes, workflowType } from "./ChaosWorkflow.js"

export interface Verification {
  readonly figures: {
    readonly workflows: number
    readonly terminal: number
    readonly missingInstances: number
    readonly unexpectedInstances: number
    readonly wrongEventSequences: number
    readonly doubledEvents: number
    readonly missingEvents: number
    readonly effects: number
    readonly effectsPending: number
    readonly effectsDead: number
    readonly timers: number
    readonly timersPending: number
    readonly leasesHeld: number
    readonly handlerInvocations: number
    readonly duplicateHandlerInvocations: number
    readonly effectsRunMoreThanOnce: number
    readonly effectsProcessedWithoutInvocation: number
    /**
     * Pairs of invocations of one effect by two processes where the second started before the first
     * finished (the first process alive): only expected when a lease expired under a live handler
     * (a frozen or starved process).
     */
    readonly overlappingRuns: number
    readonly doubledCompletions: number
    readonly deadLetteredEver: number
  }
  readonly failures: ReadonlyArray<string>
  /** Rows that were dead-lettered at some point: kind, row id, workflow id, last error. */
  readonly deadLettered: ReadonlyArray<
    { readonly kind: string; readonly rowId: string; readonly workflowId: string; readonly lastError: string }
  >
}

const n = (u: unknown) => Number(u ?? 0)
const show = (ids: ReadonlyArray<string>) =>
  ids.slice(0, 5).map((id) => JSON.stringify(id)).join(", ") + (ids.length > 5 ? ", ..." : "")

/** Checks the instances `ids` (the only ones of the chaos type expected in this database). */
export const verify = (ids: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const failures: Array<string> = []
    const expected = new Set(ids)

    const instances = yield* sql<
      { workflow_id: string; completed: boolean; types: Array<string>; seqs: Array<string> }
    >`
      SELECT i.workflow_id, i.completed_at IS NOT NULL AS completed,
        coalesce(array_agg(e.payload->>'type' ORDER BY e.sequence) FILTER (WHERE e.sequence IS NOT NULL), '{}') AS types,
        coalesce(array_agg(e.sequence ORDER BY e.sequence) FILTER (WHERE e.sequence IS NOT NULL), '{}') AS seqs
      FROM ironflow.workflow_instances i
      LEFT JOIN ironflow.events e ON e.workflow_type = i.workflow_type AND e.workflow_id = i.workflow_id
      WHERE i.workflow_type = ${workflowType}
      GROUP BY i.workflow_id, i.completed_at`
    const seen = new Set<string>()
    let terminal = 0
    let doubledEvents = 0
    let missingEvents = 0
    const wrong: Array<string> = []
    const unexpected: Array<string> = []
    const notTerminal: Array<string> = []
    for (const row of instances) {
      seen.add(row.workflow_id)
      if (!expected.has(row.workflow_id)) unexpected.push(row.workflow_id)
      if (row.completed) terminal++
      else notTerminal.push(row.workflow_id)
      const counts = new Map<string, number>()
      for (const type of row.types) counts.set(type, (counts.get(type) ?? 0) + 1)
      for (const type of ["Started", "AReceived", "BReceived", "Finished"]) {
        const count = counts.get(type) ?? 0
        if (count > 1) doubledEvents += count - 1
        if (count === 0) missingEvents++
      }
      const sequential = row.seqs.every((s, i) => Number(s) === i + 1)
      if (!expectedEventTypes(row.types) || !sequential) wrong.push(`${row.workflow_id}: [${row.types.join(", ")}]`)
    }
    const missing = ids.filter((id) => !seen.has(id))
    missingEvents += missing.length * 4
    if (missing.length > 0) failures.push(`${missing.length} instance(s) missing: ${show(missing)}`)
    if (unexpected.length > 0) failures.push(`${unexpected.length} unexpected instance(s): ${show(unexpected)}`)
    if (notTerminal.length > 0) failures.push(`${notTerminal.length} instance(s) not terminal: ${show(notTerminal)}`)
    if (wrong.length > 0) {
      failures.push(`${wrong.length} instance(s) with a wrong event sequence: ${wrong.slice(0, 3).join("; ")}`)
    }
    if (doubledEvents > 0) failures.push(`${doubledEvents} doubled event(s)`)

    const [queues] = yield* sql<Record<string, unknown>>`
      SELECT
        (SELECT count(*) FROM ironflow.outbox WHERE workflow_type = ${workflowType}) AS effects,
        (SELECT count(*) FROM ironflow.outbox WHERE workflow_type = ${workflowType}
          AND processed_at IS NULL AND dead_lettered_at IS NULL) AS effects_pending,
        (SELECT count(*) FROM ironflow.outbox WHERE workflow_type = ${workflowType}
          AND processed_at IS NULL AND dead_lettered_at IS NOT NULL) AS effects_dead,
        (SELECT count(*) FROM ironflow.timers WHERE workflow_type = ${workflowType}) AS timers,
        (SELECT count(*) FROM ironflow.timers WHERE workflow_type = ${workflowType} AND processed_at IS NULL) AS timers_pending,
        (SELECT count(*) FROM ironflow.outbox WHERE locked_by IS NOT NULL) +
          (SELECT count(*) FROM ironflow.timers WHERE locked_by IS NOT NULL) AS leases_held,
        (SELECT count(*) FROM (
          SELECT workflow_id FROM ironflow.outbox WHERE workflow_type = ${workflowType}
          GROUP BY workflow_id HAVING count(*) <> 2 OR count(DISTINCT payload->>'type') <> 2) x) AS bad_effect_sets,
        (SELECT count(*) FROM (
          SELECT workflow_id FROM ironflow.timers WHERE workflow_type = ${workflowType}
          GROUP BY workflow_id HAVING count(*) <> 1) x) AS bad_timer_sets`
    const effects = n(queues.effects)
    const timers = n(queues.timers)
    if (effects !== ids.length * 2) failures.push(`${effects} effect rows, expected ${ids.length * 2}`)
    if (timers !== ids.length) failures.push(`${timers} timer rows, expected ${ids.length}`)
    if (n(queues.bad_effect_sets) > 0) failures.push(`${queues.bad_effect_sets} instance(s) without exactly DoA + DoB`)
    if (n(queues.bad_timer_sets) > 0) failures.push(`${queues.bad_timer_sets} instance(s) without exactly one timer`)
    if (n(queues.effects_pending) > 0) failures.push(`${queues.effects_pending} effect(s) still pending`)
    if (n(queues.effects_dead) > 0) failures.push(`${queues.effects_dead} effect(s) left dead-lettered`)
    if (n(queues.timers_pending) > 0) failures.push(`${queues.timers_pending} timer(s) still pending`)
    if (n(queues.leases_held) > 0) failures.push(`${queues.leases_held} lease(s) still held`)

    const [invocations] = yield* sql<Record<string, unknown>>`
      SELECT count(*) AS total, count(DISTINCT effect_id) AS distinct_effects,
        (SELECT count(*) FROM (SELECT effect_id FROM chaos.invocations GROUP BY effect_id HAVING count(*) > 1) x) AS repeated,
        (SELECT count(*) FROM ironflow.outbox o WHERE o.workflow_type = ${workflowType} AND o.processed_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM chaos.invocations v WHERE v.effect_id = o.id)) AS without_invocation,
        (SELECT count(*) FROM chaos.invocations a JOIN chaos.invocations b ON a.effect_id = b.effect_id AND a.id < b.id
          WHERE a.worker <> b.worker AND a.finished_at IS NOT NULL AND b.started_at < a.finished_at) AS overlapping
      FROM chaos.invocations`
    if (n(invocations.without_invocation) > 0) {
      failures.push(`${invocations.without_invocation} effect(s) processed without any handler invocation`)
    }

    const [completions] = yield* sql<Record<string, unknown>>`
      SELECT count(*) AS doubled FROM (
        SELECT row_id FROM chaos.transitions WHERE what = 'processed' GROUP BY row_id HAVING count(*) > 1) x`
    if (n(completions.doubled) > 0) failures.push(`${completions.doubled} row(s) marked processed more than once`)

    const dead = yield* sql<{ kind: string; row_id: string; workflow_id: string; last_error: string | null }>`
      SELECT DISTINCT ON (row_id) kind, row_id::text AS row_id, workflow_id, last_error
      FROM chaos.transitions WHERE what = 'dead' ORDER BY row_id, id`

    return {
      figures: {
        workflows: ids.length,
        terminal,
        missingInstances: missing.length,
        unexpectedInstances: unexpected.length,
        wrongEventSequences: wrong.length,
        doubledEvents,
        missingEvents,
        effects,
        effectsPending: n(queues.effects_pending),
        effectsDead: n(queues.effects_dead),
        timers,
        timersPending: n(queues.timers_pending),
        leasesHeld: n(queues.leases_held),
        handlerInvocations: n(invocations.total),
        duplicateHandlerInvocations: n(invocations.total) - n(invocations.distinct_effects),
        effectsRunMoreThanOnce: n(invocations.repeated),
        effectsProcessedWithoutInvocation: n(invocations.without_invocation),
        overlappingRuns: n(invocations.overlapping),
        doubledCompletions: n(completions.doubled),
        deadLetteredEver: dead.length
      },
      failures,
      deadLettered: dead.map((row) => ({
        kind: row.kind,
        rowId: row.row_id,
        workflowId: row.workflow_id,
        lastError: row.last_error ?? ""
      }))
    } satisfies Verification
  })

/** Terminal instances of the chaos type (for progress). */
export const countTerminal = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const [row] = yield* sql<{ terminal: unknown; total: unknown }>`
    SELECT count(*) FILTER (WHERE completed_at IS NOT NULL) AS terminal, count(*) AS total
    FROM ironflow.workflow_instances WHERE workflow_type = ${workflowType}`
  return { terminal: n(row.terminal), total: n(row.total) }
})
