import type * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as WorkflowStore from "../../WorkflowStore.js"
import * as RealTime from "../realTime.js"
import { date, num, optionalString, parseTextArray, queueTable, storeError } from "./rows.js"

/**
 * What operators use: retention, queue statistics, live workers.
 *
 * @internal
 */
export const make = (
  sql: SqlClient.SqlClient
): Pick<
  WorkflowStore.WorkflowStore["Type"],
  | "prune"
  | "queueStats"
  | "instanceCounts"
  | "throughput"
  | "announceWorker"
  | "retireWorker"
  | "liveWorkers"
  | "databaseTimeMillis"
> => {
  const table = (kind: WorkflowStore.QueueKind) => queueTable(sql, kind)
  return {
    prune: ({ batchSize, completedInstances, cutoff, dryRun }) =>
      Effect.gen(function*() {
        // Instances whose rows may go: completed before the cutoff, nothing pending or dead, and every
        // projection past their events (the slowest checkpoint, in commit order).
        const prunable = sql`
          i.completed_at IS NOT NULL AND i.completed_at < ${cutoff}
          AND NOT EXISTS (SELECT 1 FROM ironflow.outbox o
            WHERE o.workflow_type = i.workflow_type AND o.workflow_id = i.workflow_id AND o.processed_at IS NULL)
          AND NOT EXISTS (SELECT 1 FROM ironflow.timers t
            WHERE t.workflow_type = i.workflow_type AND t.workflow_id = i.workflow_id AND t.processed_at IS NULL)
          AND NOT EXISTS (SELECT 1 FROM ironflow.events e
            JOIN (SELECT last_transaction_id, last_sequence FROM ironflow.projection_positions
                  ORDER BY last_transaction_id, last_sequence LIMIT 1) slowest ON true
            WHERE e.workflow_type = i.workflow_type AND e.workflow_id = i.workflow_id
              AND (e.transaction_id, e.global_sequence) > (slowest.last_transaction_id, slowest.last_sequence))`
        if (dryRun) {
          const [counts] = yield* sql<Record<string, unknown>>`
            SELECT
              (SELECT count(*) FROM ironflow.outbox WHERE processed_at < ${cutoff}) AS outbox,
              (SELECT count(*) FROM ironflow.timers WHERE processed_at < ${cutoff}) AS timers,
              ${completedInstances}::boolean AS with_instances`
          const [instances] = completedInstances
            ? yield* sql<Record<string, unknown>>`
              SELECT count(*) AS instances,
                coalesce(sum(i.event_count), 0) AS events,
                (SELECT count(*) FROM ironflow.input_observations ob JOIN ironflow.workflow_instances i
                  ON ob.workflow_type = i.workflow_type AND ob.workflow_id = i.workflow_id WHERE ${prunable}) AS observations
              FROM ironflow.workflow_instances i WHERE ${prunable}`
            : [{ instances: 0, events: 0, observations: 0 }]
          return {
            dryRun,
            cutoff,
            outbox: num(counts.outbox),
            timers: num(counts.timers),
            instances: num(instances.instances),
            events: num(instances.events),
            observations: num(instances.observations)
          }
        }
        const deleteProcessed = (kind: WorkflowStore.QueueKind) =>
          Effect.gen(function*() {
            let total = 0
            while (true) {
              const rows = yield* sql<{ n: unknown }>`
                WITH gone AS (
                  DELETE FROM ${table(kind)} WHERE id IN (
                    SELECT id FROM ${table(kind)} WHERE processed_at < ${cutoff}
                    LIMIT ${batchSize} FOR UPDATE SKIP LOCKED)
                  RETURNING 1)
                SELECT count(*) AS n FROM gone`
              const n = num(rows[0].n)
              total += n
              if (n < batchSize) return total
            }
          })
        const outbox = yield* deleteProcessed("effect")
        const timers = yield* deleteProcessed("timer")
        let instances = 0
        let events = 0
        let observations = 0
        while (completedInstances) {
          const [batch] = yield* sql<Record<string, unknown>>`
            WITH doomed AS (
              SELECT i.workflow_type, i.workflow_id FROM ironflow.workflow_instances i
              WHERE ${prunable}
              LIMIT ${batchSize} FOR UPDATE SKIP LOCKED
            ), e AS (
              DELETE FROM ironflow.events x USING doomed d
              WHERE x.workflow_type = d.workflow_type AND x.workflow_id = d.workflow_id RETURNING 1
            ), ob AS (
              DELETE FROM ironflow.input_observations x USING doomed d
              WHERE x.workflow_type = d.workflow_type AND x.workflow_id = d.workflow_id RETURNING 1
            ), o AS (
              DELETE FROM ironflow.outbox x USING doomed d
              WHERE x.workflow_type = d.workflow_type AND x.workflow_id = d.workflow_id RETURNING 1
            ), t AS (
              DELETE FROM ironflow.timers x USING doomed d
              WHERE x.workflow_type = d.workflow_type AND x.workflow_id = d.workflow_id RETURNING 1
            ), i AS (
              DELETE FROM ironflow.workflow_instances x USING doomed d
              WHERE x.workflow_type = d.workflow_type AND x.workflow_id = d.workflow_id RETURNING 1
            )
            SELECT (SELECT count(*) FROM i) AS instances, (SELECT count(*) FROM e) AS events,
              (SELECT count(*) FROM ob) AS observations`
          instances += num(batch.instances)
          events += num(batch.events)
          observations += num(batch.observations)
          if (num(batch.instances) < batchSize) break
        }
        return { dryRun, cutoff, outbox, timers, instances, events, observations }
      }).pipe(Effect.mapError(storeError("prune"))),
    queueStats: Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const at = new Date(now)
      const longSince = new Date(now - WorkflowStore.longRunningAfterMillis)
      const rows = yield* sql<Record<string, unknown>>`
        SELECT 'effect' AS kind, workflow_type,
          count(*) FILTER (WHERE dead_lettered_at IS NULL) AS pending,
          count(*) FILTER (WHERE dead_lettered_at IS NULL AND (locked_until IS NULL OR locked_until <= ${at})
            AND locked_by IS NULL) AS ready,
          count(*) FILTER (WHERE dead_lettered_at IS NULL AND locked_by IS NOT NULL AND locked_until <= ${at}) AS expired,
          count(*) FILTER (WHERE dead_lettered_at IS NULL AND locked_by IS NOT NULL AND locked_until > ${at}
            AND claimed_at <= ${longSince}) AS long_running,
          count(*) FILTER (WHERE dead_lettered_at IS NOT NULL) AS dead,
          coalesce(sum(timed_out_attempts), 0) AS timed_out
        FROM ironflow.outbox WHERE processed_at IS NULL GROUP BY workflow_type
        UNION ALL
        SELECT 'timer' AS kind, workflow_type,
          count(*) FILTER (WHERE dead_lettered_at IS NULL) AS pending,
          count(*) FILTER (WHERE dead_lettered_at IS NULL AND fire_at <= ${at}
            AND (locked_until IS NULL OR locked_until <= ${at}) AND locked_by IS NULL) AS ready,
          count(*) FILTER (WHERE dead_lettered_at IS NULL AND locked_by IS NOT NULL AND locked_until <= ${at}) AS expired,
          count(*) FILTER (WHERE dead_lettered_at IS NULL AND locked_by IS NOT NULL AND locked_until > ${at}
            AND claimed_at <= ${longSince}) AS long_running,
          count(*) FILTER (WHERE dead_lettered_at IS NOT NULL) AS dead,
          0 AS timed_out
        FROM ironflow.timers WHERE processed_at IS NULL GROUP BY workflow_type
        ORDER BY workflow_type, kind`
      return rows.map((row): WorkflowStore.QueueStats => ({
        kind: row.kind === "timer" ? "timer" : "effect",
        workflowType: String(row.workflow_type),
        pending: num(row.pending),
        ready: num(row.ready),
        expiredLeases: num(row.expired),
        longRunning: num(row.long_running),
        deadLetters: num(row.dead),
        timedOutAttempts: num(row.timed_out)
      }))
    }).pipe(Effect.mapError(storeError("read queue statistics"))),
    instanceCounts: sql<Record<string, unknown>>`
      SELECT workflow_type, count(*) FILTER (WHERE completed_at IS NULL) AS active,
        count(*) FILTER (WHERE completed_at IS NOT NULL) AS completed
      FROM ironflow.workflow_instances GROUP BY workflow_type ORDER BY workflow_type`.pipe(
      Effect.map((rows) =>
        rows.map((row): WorkflowStore.InstanceCounts => ({
          workflowType: String(row.workflow_type),
          active: num(row.active),
          completed: num(row.completed)
        }))
      ),
      Effect.mapError(storeError("count instances"))
    ),
    throughput: (minutes) =>
      Effect.gen(function*() {
        // Minutes of this process's Clock, as processed_at is written with the runtimes' Clock.
        const now = yield* Clock.currentTimeMillis
        const last = Math.floor(now / 60_000) * 60_000
        const count = Math.max(1, Math.min(Math.floor(minutes), 24 * 60))
        const since = new Date(last - (count - 1) * 60_000)
        const rows = yield* sql<Record<string, unknown>>`
          SELECT kind, (extract(epoch FROM date_trunc('minute', processed_at)) * 1000)::float8 AS minute_ms,
            count(*) AS n
          FROM (
            SELECT 'effect' AS kind, processed_at FROM ironflow.outbox WHERE processed_at >= ${since}
            UNION ALL
            SELECT 'timer' AS kind, processed_at FROM ironflow.timers WHERE processed_at >= ${since}
          ) done
          GROUP BY kind, minute_ms`
        const buckets = Array.from({ length: count }, (_, i) => ({
          minute: new Date(since.getTime() + i * 60_000),
          effects: 0,
          timers: 0
        }))
        for (const row of rows) {
          const index = Math.round((num(row.minute_ms) - since.getTime()) / 60_000)
          const bucket = buckets[index]
          if (bucket === undefined) continue
          if (row.kind === "timer") bucket.timers += num(row.n)
          else bucket.effects += num(row.n)
        }
        return buckets as ReadonlyArray<WorkflowStore.ThroughputMinute>
      }).pipe(Effect.mapError(storeError("read throughput"))),
    announceWorker: (worker, ttl) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const at = new Date(now)
        const expires = new Date(now + Duration.toMillis(ttl))
        yield* sql`
          INSERT INTO ironflow.workers (worker_id, workflow_types, host, pid, started_at, heartbeat_at, expires_at,
            clock_offset_ms, claims_paused)
          VALUES (${worker.workerId}, ${worker.workflowTypes}::text[], ${worker.host}, ${worker.pid}, ${at}, ${at}, ${expires},
            ${Option.getOrNull(worker.clockOffsetMillis)}::float8, ${Option.getOrNull(worker.claimsPaused)}::text)
          ON CONFLICT (worker_id) DO UPDATE SET workflow_types = EXCLUDED.workflow_types, host = EXCLUDED.host,
            pid = EXCLUDED.pid, heartbeat_at = EXCLUDED.heartbeat_at, expires_at = EXCLUDED.expires_at,
            clock_offset_ms = EXCLUDED.clock_offset_ms, claims_paused = EXCLUDED.claims_paused`
      }).pipe(Effect.mapError(storeError("announce a worker")), RealTime.untraced), // housekeeping, in no trace
    retireWorker: (workerId) =>
      sql`DELETE FROM ironflow.workers WHERE worker_id = ${workerId}`.pipe(
        Effect.asVoid,
        Effect.mapError(storeError("retire a worker")),
        RealTime.untraced
      ),
    liveWorkers: Effect.gen(function*() {
      const at = new Date(yield* Clock.currentTimeMillis)
      const rows = yield* sql<Record<string, unknown>>`
        SELECT worker_id, workflow_types, host, pid, started_at, heartbeat_at, expires_at, clock_offset_ms, claims_paused
        FROM ironflow.workers WHERE expires_at > ${at} ORDER BY started_at`
      return rows.map((row): WorkflowStore.WorkerInfo => ({
        workerId: String(row.worker_id),
        workflowTypes: parseTextArray(row.workflow_types),
        host: String(row.host),
        pid: num(row.pid),
        startedAt: date(row.started_at),
        heartbeatAt: date(row.heartbeat_at),
        expiresAt: date(row.expires_at),
        clockOffsetMillis: row.clock_offset_ms === null || row.clock_offset_ms === undefined
          ? Option.none()
          : Option.some(num(row.clock_offset_ms)),
        claimsPaused: optionalString(row.claims_paused)
      }))
    }).pipe(Effect.mapError(storeError("list live workers"))),
    databaseTimeMillis: sql<{ now_ms: unknown }>`
      SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now_ms`.pipe(
      Effect.map((rows) => num(rows[0].now_ms)),
      Effect.mapError(storeError("read the database clock"))
    )
  }
}
