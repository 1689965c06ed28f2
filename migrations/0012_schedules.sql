-- ironflow for Effect (additive): cron schedules. A schedule, declared in code,
-- feeds a workflow an input on a calendar (a cron expression in a time zone, or
-- a fixed interval). Each tick is a row with a unique key (schedule name + tick
-- time, or a trigger id), created once under the schedule row's lock and handed
-- to the timers once: its input becomes a due timer row in the same
-- transaction, and the timer workers apply it exactly once.

CREATE TABLE ironflow.schedules (
    name text PRIMARY KEY,
    workflow_type text NOT NULL,
    -- 'cron' (expression, time_zone) or 'interval' (expression = milliseconds, ticks at multiples since the epoch).
    kind text NOT NULL CHECK (kind IN ('cron', 'interval')),
    expression text NOT NULL,
    time_zone text,
    catch_up text NOT NULL CHECK (catch_up IN ('skip', 'latest', 'all')),
    catch_up_limit integer,
    -- The next tick to consider; NULL: computed from the current time at the next pass (new, changed or resumed).
    next_tick_at timestamptz,
    paused boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE ironflow.schedule_ticks (
    id uuid PRIMARY KEY,
    schedule_name text NOT NULL REFERENCES ironflow.schedules (name) ON DELETE CASCADE,
    -- The tick's time (ISO 8601) for a scheduled tick, 'trigger:<id>' for a triggered one.
    tick_key text NOT NULL,
    tick_at timestamptz NOT NULL,
    source text NOT NULL CHECK (source IN ('schedule', 'trigger')),
    created_at timestamptz NOT NULL,
    -- When a runtime built its input and handed it to the timers (timer_id), or failed to (error).
    fired_at timestamptz,
    timer_id uuid,
    workflow_id text,
    error text,
    UNIQUE (schedule_name, tick_key)
);

CREATE INDEX schedule_ticks_unfired_idx ON ironflow.schedule_ticks (tick_at, id) WHERE fired_at IS NULL;
CREATE INDEX schedule_ticks_recent_idx ON ironflow.schedule_ticks (schedule_name, tick_at DESC, created_at DESC);
