-- ironflow for Effect (additive): live runtimes announce themselves, so
-- operators (`ironflow stats`) can see which workflow types some process
-- handles and which pending rows belong to types nobody runs.
CREATE TABLE ironflow.workers (
    worker_id text PRIMARY KEY,
    workflow_types text[] NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
