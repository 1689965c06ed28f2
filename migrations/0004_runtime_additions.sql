-- ironflow for Effect, additive changes.
-- A row is a dead letter when its retry
-- Schedule gave up, recorded in dead_lettered_at, instead of the Rust crate's
-- "attempts >= the current max_attempts" (a Schedule has no single max).
ALTER TABLE ironflow.outbox ADD COLUMN dead_lettered_at timestamptz;
ALTER TABLE ironflow.timers ADD COLUMN dead_lettered_at timestamptz;

-- Claims scan only rows that can run, in claim order.
CREATE INDEX outbox_claim_idx ON ironflow.outbox (created_at, id)
    WHERE processed_at IS NULL AND dead_lettered_at IS NULL;
CREATE INDEX timers_claim_idx ON ironflow.timers (fire_at, id)
    WHERE processed_at IS NULL AND dead_lettered_at IS NULL;
CREATE INDEX outbox_dead_letters_idx ON ironflow.outbox (created_at DESC)
    WHERE processed_at IS NULL AND dead_lettered_at IS NOT NULL;
CREATE INDEX timers_dead_letters_idx ON ironflow.timers (created_at DESC)
    WHERE processed_at IS NULL AND dead_lettered_at IS NOT NULL;

-- Timer workers sleep until the earliest claimable timer; leased and
-- backing-off timers are found through this index.
CREATE INDEX timers_leased_idx ON ironflow.timers (locked_until)
    WHERE processed_at IS NULL AND dead_lettered_at IS NULL AND locked_until IS NOT NULL;

-- Snapshots: ironflow reserves snapshot_sequence/_data/_at; the fingerprint of
-- the state Schema that wrote a snapshot lets a changed Schema ignore it.
ALTER TABLE ironflow.workflow_instances ADD COLUMN snapshot_version text;
