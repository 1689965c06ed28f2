/**
 * The `WorkflowStore` contract (spec §7.1, ironflow's `tests/postgres/store.rs`)
 * run against `PgWorkflowStore` over a given database: real PostgreSQL or the
 * embedded PGlite.
 *
 * One database serves the whole suite, so every test works on workflow types
 * of its own (`uniqueType`). Time is the TestClock: it only moves with
 * `TestClock.adjust`, which drives leases, backoff and timer due times.
 *
 * Deliberate differences from ironflow, tested as documented here:
 * - a dead letter is a row with `dead_lettered_at` set by
 *   `fail(..., { _tag: "DeadLetter" })`, not "attempts >= max_attempts";
 * - `retryDeadLetter` resets only a row that really is dead;
 * - every timestamp comes from Effect's `Clock`, not the database's `now()`.
 */
import type { SqlClient } from "@effect/sql"
import { it } from "@effect/vitest"
import { Layer } from "effect"
import { PgWorkflowStore } from "ironflow"
import { assertBackend } from "../support/database.js"
import type { SuiteOptions } from "./store/common.js"
export type { SuiteOptions } from "./store/common.js"
import { concurrencyTests } from "./store/concurrency.js"
import { deadLettersTests } from "./store/deadLetters.js"
import { effectClaimsTests } from "./store/effectClaims.js"
import { eventsTests } from "./store/events.js"
import { lifecycleTests } from "./store/lifecycle.js"
import { timerClaimsTests } from "./store/timerClaims.js"
import { timersInUnitsOfWorkTests } from "./store/timersInUnitsOfWork.js"
import { uniqueKeysAndSnapshotsTests } from "./store/uniqueKeysAndSnapshots.js"
import { unitsOfWorkTests } from "./store/unitsOfWork.js"

export const suite = (
  label: string,
  database: Layer.Layer<SqlClient.SqlClient, unknown>,
  options: SuiteOptions
) =>
  it.layer(PgWorkflowStore.layer.pipe(Layer.provideMerge(database)), { timeout: 60_000 })(
    `WorkflowStore contract (${label})`,
    (it) => {
      it.effect(`runs on ${label}: the database says so, and another connection sees the writes`, () =>
        assertBackend(label))

      unitsOfWorkTests(it)
      timersInUnitsOfWorkTests(it)
      concurrencyTests(it, options)
      effectClaimsTests(it)
      lifecycleTests(it)
      deadLettersTests(it)
      timerClaimsTests(it)
      eventsTests(it)
      uniqueKeysAndSnapshotsTests(it)
    }
  )
