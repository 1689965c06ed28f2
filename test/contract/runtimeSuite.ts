/**
 * The `WorkflowRuntime` contract (spec §7.3 `tests/postgres/runtime.rs`, §7.4
 * `tests/postgres/e2e.rs`, the seed API of §3.9–3.10 and the runtime
 * decisions of DESIGN.md §3–5) run against `PgWorkflowStore` over a given
 * database: real PostgreSQL or the embedded PGlite.
 *
 * One database serves the whole suite, so every test defines workflow types of
 * its own (`uniqueType`) and builds its own runtime inside the test; claims
 * filter by registered types, so runtimes of different tests never see each
 * other's rows.
 *
 * Time is the TestClock: it only moves with `TestClock.adjust`, and every
 * timestamp the store writes or compares comes from it. Workers look at the
 * database on real time (woken at once when an execute commits effects or
 * timers, polling otherwise), so effect processing proceeds without moving the
 * clock, while what is due (retry backoff, leases, timers) is decided by
 * `TestClock.adjust` (directly, or `advance` while waiting). Database I/O is
 * real, so waiting for the runtime uses real sleeps. Tests that need real time
 * (lease heartbeat, a handler outliving the shutdown timeout, timer wake-up)
 * run entirely under the live Clock (`live`).
 *
 * Our semantics, where they differ from ironflow 0.6.0 (spec §11):
 * - a dead letter is a row with `dead_lettered_at` set, read with
 *   `DeadLetters` / `runtime.fetchDeadLetters`;
 * - rows of unregistered workflow types stay untouched (0.6.0 behaviour);
 * - a handler that dies is a failed attempt whose `Cause` is `last_error`,
 *   and its worker keeps running (ironflow: the worker panics and stops);
 * - an interrupted handler (shutdown or otherwise) gives its lease back
 *   without counting an attempt;
 * - shutdown releases claimed-but-unstarted rows at once and interrupts
 *   handlers still running after `shutdownTimeout`.
 */
import type { SqlClient } from "@effect/sql"
import { it } from "@effect/vitest"
import { Layer } from "effect"
import { PgWorkflowStore } from "ironflow"
import { assertBackend } from "../support/database.js"
import { e2eAndTimersTests } from "./runtime/e2eAndTimers.js"
import { failuresTests } from "./runtime/failures.js"
import { ironflowFailuresTests } from "./runtime/ironflowFailures.js"
import { ironflowProcessingTests } from "./runtime/ironflowProcessing.js"
import { leasesTests } from "./runtime/leases.js"
import { routingTests } from "./runtime/routing.js"
import { seedApiTests } from "./runtime/seedApi.js"
import { shutdownTests } from "./runtime/shutdown.js"
import { storeFailuresTests } from "./runtime/storeFailures.js"

export const suite = (label: string, database: Layer.Layer<SqlClient.SqlClient, unknown>) =>
  it.layer(PgWorkflowStore.layer.pipe(Layer.provideMerge(database)), { timeout: "120 seconds" })(
    `WorkflowRuntime (${label})`,
    (it) => {
      it.effect(`runs on ${label}: the database says so, and another connection sees the writes`, () =>
        assertBackend(label))

      ironflowProcessingTests(it)
      ironflowFailuresTests(it)
      e2eAndTimersTests(it)
      shutdownTests(it)
      failuresTests(it)
      leasesTests(it)
      routingTests(it)
      storeFailuresTests(it)
      seedApiTests(it)
    }
  )
