-- ironflow for Effect (additive): projections read events in commit order.
-- A bigserial global_sequence is handed out before commit, so a later number
-- can become visible first; a reader that checkpoints on it can skip events.
-- Each event records the id of the transaction that wrote it. Readers take
-- only events of transactions older than the oldest one still running
-- (pg_snapshot_xmin), ordered by (transaction_id, global_sequence): that set
-- never grows behind a checkpoint.
ALTER TABLE ironflow.events ADD COLUMN transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX events_commit_order_idx ON ironflow.events (transaction_id, global_sequence);

ALTER TABLE ironflow.projection_positions ADD COLUMN last_transaction_id xid8 NOT NULL DEFAULT '0';
