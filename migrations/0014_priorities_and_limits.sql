-- ironflow for Effect (additive): priorities, and concurrency and rate limits
-- per key, enforced here (not in a process's memory) so they hold across every
-- runtime on the database and survive crashes.

-- Among ready rows, higher priority is claimed first; equal priorities keep the
-- order of before (creation, then id; timers: fire time, then id).
ALTER TABLE ironflow.outbox ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE ironflow.timers ADD COLUMN priority integer NOT NULL DEFAULT 0;

-- limit_key / rate_key: the names of the concurrency and rate limits the row
-- runs under ('<workflow type>:<key>'), written with the row when the writer
-- knows the handler, else set by the first claim (the claiming worker computes
-- them from the payload, so they are always right when it matters).
-- holds_slot: the row holds a slot of limit_key while its lease is current (a
-- SIGKILLed worker's slots come back when its leases expire).
-- awaiting_slot / parked_on: the row waits for a slot of the limit named
-- parked_on; parked rows are out of the claim index, so a saturated key is not
-- rescanned by every claim.
ALTER TABLE ironflow.outbox ADD COLUMN limit_key text;
ALTER TABLE ironflow.outbox ADD COLUMN rate_key text;
ALTER TABLE ironflow.outbox ADD COLUMN holds_slot boolean NOT NULL DEFAULT false;
ALTER TABLE ironflow.outbox ADD COLUMN awaiting_slot boolean NOT NULL DEFAULT false;
ALTER TABLE ironflow.outbox ADD COLUMN parked_on text;

DROP INDEX ironflow.outbox_claim_idx;
CREATE INDEX outbox_claim_idx ON ironflow.outbox (priority DESC, created_at, id)
    WHERE processed_at IS NULL AND dead_lettered_at IS NULL AND NOT awaiting_slot;
-- Timers are claimed among due ones (fire_at <= now): the range scan on fire_at
-- stays, and only the due rows are ordered by priority (future timers are never
-- read, which an index led by priority could not avoid).
DROP INDEX ironflow.timers_claim_idx;
CREATE INDEX timers_claim_idx ON ironflow.timers (fire_at, id) INCLUDE (priority)
    WHERE processed_at IS NULL AND dead_lettered_at IS NULL;

-- Slot holders of a concurrency limit (counted under the limit's lock).
CREATE INDEX outbox_slot_holders_idx ON ironflow.outbox (limit_key)
    WHERE holds_slot AND processed_at IS NULL;
-- Ready rows of a key, to park them all at once when the key is saturated.
CREATE INDEX outbox_limit_key_idx ON ironflow.outbox (limit_key)
    WHERE limit_key IS NOT NULL AND processed_at IS NULL AND NOT awaiting_slot;
CREATE INDEX outbox_rate_key_idx ON ironflow.outbox (rate_key)
    WHERE rate_key IS NOT NULL AND processed_at IS NULL AND NOT awaiting_slot;
-- Parked rows of a limit, in claim order, to release them when slots free up.
CREATE INDEX outbox_parked_idx ON ironflow.outbox (parked_on, priority DESC, created_at, id)
    WHERE awaiting_slot AND processed_at IS NULL;

-- One row per limit name: its current configuration (from the handler that
-- last claimed under it) and whether rows are parked on it. Its row lock
-- serializes the grants of one limit across processes.
CREATE TABLE ironflow.limits (
    name text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('concurrency', 'rate')),
    max_count integer NOT NULL,
    -- The rate limit's window, in milliseconds.
    per_ms bigint,
    parked boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL
);
CREATE INDEX limits_parked_idx ON ironflow.limits (name) WHERE parked;

-- The grants of a rate limit in its sliding window (older ones are pruned).
CREATE TABLE ironflow.rate_grants (
    name text NOT NULL,
    granted_at timestamptz NOT NULL,
    row_id uuid NOT NULL
);
CREATE INDEX rate_grants_window_idx ON ironflow.rate_grants (name, granted_at);

-- Free capacity of a limit now, its row locked by the caller; the rows of
-- p_exclude (being admitted by the caller) do not count as holders.
CREATE FUNCTION ironflow.limit_capacity(p_now timestamptz, p_name text, p_exclude uuid[])
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_limit ironflow.limits%ROWTYPE;
    v_used integer;
BEGIN
    SELECT * INTO v_limit FROM ironflow.limits WHERE name = p_name;
    IF v_limit.kind = 'concurrency' THEN
        SELECT count(*) INTO v_used FROM ironflow.outbox o
         WHERE o.limit_key = p_name AND o.holds_slot AND o.processed_at IS NULL
           AND o.locked_by IS NOT NULL AND o.locked_until > p_now
           AND NOT (o.id = ANY(p_exclude));
    ELSE
        DELETE FROM ironflow.rate_grants g
         WHERE g.name = p_name AND g.granted_at <= p_now - make_interval(secs => v_limit.per_ms / 1000.0);
        SELECT count(*) INTO v_used FROM ironflow.rate_grants g WHERE g.name = p_name;
    END IF;
    RETURN greatest(v_limit.max_count - v_used, 0);
END
$$;

-- Admits claimed rows (in claim order) under their limits: a row runs when
-- every limit it names has room; the others are parked (lease given back), and
-- so is every other ready row naming a limit found full. Limits are locked in
-- name order (no cycles between concurrent admissions). Returns the admitted
-- ids still held by p_locked_by.
CREATE FUNCTION ironflow.admit_rows(
    p_now timestamptz,
    p_locked_by text,
    p_ids uuid[],
    p_limit_keys text[],
    p_limit_counts integer[],
    p_rate_keys text[],
    p_rate_counts integer[],
    p_rate_per_ms bigint[]
)
RETURNS uuid[]
LANGUAGE plpgsql AS $$
DECLARE
    v_names text[];
    v_room integer[];
    v_full text[] := '{}';
    v_admit uuid[] := '{}';
    v_park uuid[] := '{}';
    v_park_on text[] := '{}';
    v_admitted uuid[];
    c integer;
    r integer;
    i integer;
BEGIN
    INSERT INTO ironflow.limits (name, kind, max_count, per_ms, updated_at)
    SELECT DISTINCT ON (n.name COLLATE "C") n.name, n.kind, n.max_count, n.per_ms, p_now
      FROM (SELECT k AS name, 'concurrency' AS kind, m AS max_count, NULL::bigint AS per_ms
              FROM unnest(p_limit_keys, p_limit_counts) AS x(k, m) WHERE k IS NOT NULL
            UNION ALL
            SELECT k, 'rate', m, p FROM unnest(p_rate_keys, p_rate_counts, p_rate_per_ms) AS y(k, m, p)
             WHERE k IS NOT NULL) n
     ORDER BY n.name COLLATE "C"
    ON CONFLICT (name) DO NOTHING;

    SELECT array_agg(l.name ORDER BY l.name COLLATE "C") INTO v_names FROM (
        SELECT name FROM ironflow.limits
         WHERE name = ANY(p_limit_keys) OR name = ANY(p_rate_keys)
         ORDER BY name COLLATE "C"
           FOR UPDATE) l;
    v_names := coalesce(v_names, '{}');
    -- The configuration of the handler admitting now wins (a changed limit applies from its next claim).
    UPDATE ironflow.limits l SET max_count = n.m, per_ms = n.p, updated_at = p_now
      FROM (SELECT DISTINCT ON (k) k, m, p FROM (
              SELECT k, m, NULL::bigint AS p FROM unnest(p_limit_keys, p_limit_counts) AS x(k, m)
              UNION ALL SELECT k, m, p FROM unnest(p_rate_keys, p_rate_counts, p_rate_per_ms) AS y(k, m, p)) z
             WHERE k IS NOT NULL ORDER BY k) n
     WHERE l.name = n.k AND (l.max_count <> n.m OR l.per_ms IS DISTINCT FROM n.p);

    v_room := ARRAY(SELECT ironflow.limit_capacity(p_now, n, p_ids) FROM unnest(v_names) WITH ORDINALITY AS t(n, o) ORDER BY o);

    FOR i IN 1 .. coalesce(cardinality(p_ids), 0) LOOP
        c := array_position(v_names, p_limit_keys[i]);
        r := array_position(v_names, p_rate_keys[i]);
        IF (c IS NULL OR v_room[c] > 0) AND (r IS NULL OR v_room[r] > 0) THEN
            IF c IS NOT NULL THEN v_room[c] := v_room[c] - 1; END IF;
            IF r IS NOT NULL THEN v_room[r] := v_room[r] - 1; END IF;
            v_admit := v_admit || p_ids[i];
        ELSE
            v_park := v_park || p_ids[i];
            IF c IS NOT NULL AND v_room[c] <= 0 THEN
                v_park_on := v_park_on || p_limit_keys[i];
            ELSE
                v_park_on := v_park_on || p_rate_keys[i];
            END IF;
        END IF;
    END LOOP;

    WITH admitted AS (
        UPDATE ironflow.outbox o SET holds_slot = (a.limit_key IS NOT NULL), limit_key = a.limit_key,
               rate_key = a.rate_key
          FROM unnest(p_ids, p_limit_keys, p_rate_keys) AS a(id, limit_key, rate_key)
         WHERE o.id = a.id AND a.id = ANY(v_admit) AND o.locked_by = p_locked_by AND o.processed_at IS NULL
        RETURNING o.id, o.rate_key
    ), granted AS (
        INSERT INTO ironflow.rate_grants (name, granted_at, row_id)
        SELECT rate_key, p_now, id FROM admitted WHERE rate_key IS NOT NULL
    )
    SELECT coalesce(array_agg(id), '{}') INTO v_admitted FROM admitted;

    IF cardinality(v_park) > 0 THEN
        UPDATE ironflow.outbox o SET awaiting_slot = true, parked_on = p.name, holds_slot = false,
               limit_key = a.limit_key, rate_key = a.rate_key, locked_by = NULL, locked_until = NULL
          FROM unnest(v_park, v_park_on) AS p(id, name), unnest(p_ids, p_limit_keys, p_rate_keys) AS a(id, limit_key, rate_key)
         WHERE o.id = p.id AND a.id = p.id AND o.locked_by = p_locked_by AND o.processed_at IS NULL;
        SELECT coalesce(array_agg(DISTINCT n), '{}') INTO v_full FROM unnest(v_park_on) AS n;
        -- Every other ready row of a full limit waits too: claims no longer read them.
        UPDATE ironflow.outbox o SET awaiting_slot = true, parked_on = o.limit_key, holds_slot = false
         WHERE o.limit_key = ANY(v_full) AND o.processed_at IS NULL AND NOT o.awaiting_slot
           AND o.dead_lettered_at IS NULL AND (o.locked_until IS NULL OR o.locked_until <= p_now);
        UPDATE ironflow.outbox o SET awaiting_slot = true, parked_on = o.rate_key, holds_slot = false
         WHERE o.rate_key = ANY(v_full) AND o.processed_at IS NULL AND NOT o.awaiting_slot
           AND o.dead_lettered_at IS NULL AND (o.locked_until IS NULL OR o.locked_until <= p_now);
        UPDATE ironflow.limits SET parked = true WHERE name = ANY(v_full) AND NOT parked;
    END IF;
    RETURN v_admitted;
END
$$;

-- Gives parked rows back to the claims, as many per limit as it has room for
-- now (all limits with parked rows, or those of p_names): after slots were
-- settled, when leases expired, when a rate window moved on. Limits locked by
-- another release are skipped (it does the same). Returns how many rows.
CREATE FUNCTION ironflow.release_waiting(p_now timestamptz, p_names text[])
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_name text;
    v_room integer;
    v_released integer;
    v_total integer := 0;
BEGIN
    FOR v_name IN
        SELECT name FROM ironflow.limits
         WHERE parked AND (p_names IS NULL OR name = ANY(p_names))
         ORDER BY name COLLATE "C"
           FOR UPDATE SKIP LOCKED
    LOOP
        v_room := ironflow.limit_capacity(p_now, v_name, '{}');
        IF v_room > 0 THEN
            UPDATE ironflow.outbox o SET awaiting_slot = false, parked_on = NULL
             WHERE o.id IN (
                SELECT w.id FROM ironflow.outbox w
                 WHERE w.parked_on = v_name AND w.awaiting_slot AND w.processed_at IS NULL
                 ORDER BY w.priority DESC, w.created_at, w.id
                 LIMIT v_room);
            GET DIAGNOSTICS v_released = ROW_COUNT;
            v_total := v_total + v_released;
            IF v_released < v_room THEN
                UPDATE ironflow.limits SET parked = false WHERE name = v_name;
            END IF;
        END IF;
    END LOOP;
    RETURN v_total;
END
$$;

-- write_group of 0013 (with trace contexts), redefined with the priorities of new effects and timers and
-- the limit names of new effects as four more parameters (NULL: priority 0, no limit).
DROP FUNCTION ironflow.write_group(
    timestamptz, text, text, uuid[], uuid[], text[], timestamptz[], boolean[], uuid[], text[], text[], text[], text[], text[], text[], text[], text[], text[], text[], bigint[], integer[], text[], uuid[], text[], text[], text[], text[], text[], text[], uuid[], text[], text[], timestamptz[], text[], text[], text[], text[], integer[], boolean[], bigint[], text[], text[], text[], text[], text[], text[]);

-- Writes one group (as in 0009, plus priorities and limit keys): the settlements of its rows first (so a timer that re-arms
-- its own key inserts a new row), then instances created for inputs that were
-- not accepted are removed, then observations, events, effects, timer
-- cancellations, timers (keyed ones upserted with their retry state reset), and
-- the instances' counters, completion and snapshots. Returns the settled ids.
CREATE FUNCTION ironflow.write_group(
    p_now timestamptz,
    p_queue text,
    p_locked_by text,
    p_completed uuid[],
    p_failed uuid[],
    p_failed_errors text[],
    p_failed_retry_at timestamptz[],
    p_failed_handled boolean[],
    p_released uuid[],
    p_discard_types text[],
    p_discard_ids text[],
    p_observation_types text[],
    p_observation_ids text[],
    p_observation_input_types text[],
    p_observation_payloads text[],
    p_observation_outcomes text[],
    p_observation_rejections text[],
    p_event_types text[],
    p_event_ids text[],
    p_event_sequences bigint[],
    p_event_versions integer[],
    p_event_payloads text[],
    p_effect_ids uuid[],
    p_effect_types text[],
    p_effect_workflow_ids text[],
    p_effect_payloads text[],
    p_cancel_types text[],
    p_cancel_ids text[],
    p_cancel_keys text[],
    p_timer_ids uuid[],
    p_timer_types text[],
    p_timer_workflow_ids text[],
    p_timer_fire_at timestamptz[],
    p_timer_inputs text[],
    p_timer_keys text[],
    p_instance_types text[],
    p_instance_ids text[],
    p_instance_events integer[],
    p_instance_completed boolean[],
    p_snapshot_sequences bigint[],
    p_snapshot_data text[],
    p_snapshot_versions text[],
    -- 0014: priorities of new effects and timers, the limit names of new effects (NULL: priority 0, no limit).
    p_effect_priorities integer[] DEFAULT NULL,
    p_effect_limit_keys text[] DEFAULT NULL,
    p_effect_rate_keys text[] DEFAULT NULL,
    p_timer_priorities integer[] DEFAULT NULL,
    -- 0013: the trace context of each effect and timer row, in the order of p_effect_ids / p_timer_ids.
    -- Shorter arrays (the default: empty, when no tracer is installed) leave the rest NULL: unnest pads.
    p_effect_traceparents text[] DEFAULT '{}',
    p_effect_tracestates text[] DEFAULT '{}',
    p_timer_traceparents text[] DEFAULT '{}',
    p_timer_tracestates text[] DEFAULT '{}'
)
RETURNS uuid[]
LANGUAGE plpgsql AS $$
DECLARE
    v_settled uuid[] := '{}';
BEGIN
    IF p_queue IS NOT NULL THEN
        v_settled := ironflow.settle_rows(p_now, p_queue, p_locked_by, p_completed, p_failed, p_failed_errors,
            p_failed_retry_at, p_failed_handled, p_released);
    END IF;
    IF cardinality(p_discard_types) > 0 THEN
        DELETE FROM ironflow.workflow_instances i
         USING unnest(p_discard_types, p_discard_ids) AS d(type, id)
         WHERE i.workflow_type = d.type AND i.workflow_id = d.id AND i.event_count = 0;
    END IF;
    IF cardinality(p_observation_types) > 0 THEN
        INSERT INTO ironflow.input_observations
            (workflow_type, workflow_id, input_type, payload, outcome, rejection_payload, observed_at)
        SELECT o.type, o.id, o.input_type, o.payload::jsonb, o.outcome, o.rejection::jsonb, p_now
          FROM unnest(p_observation_types, p_observation_ids, p_observation_input_types, p_observation_payloads,
                      p_observation_outcomes, p_observation_rejections)
               WITH ORDINALITY AS o(type, id, input_type, payload, outcome, rejection, ord)
         ORDER BY o.ord;
    END IF;
    IF cardinality(p_event_types) > 0 THEN
        INSERT INTO ironflow.events (workflow_type, workflow_id, sequence, payload, event_version, created_at)
        SELECT e.type, e.id, e.sequence, e.payload::jsonb, e.version, p_now
          FROM unnest(p_event_types, p_event_ids, p_event_sequences, p_event_payloads, p_event_versions)
               WITH ORDINALITY AS e(type, id, sequence, payload, version, ord)
         ORDER BY e.ord;
    END IF;
    IF cardinality(p_effect_ids) > 0 THEN
        INSERT INTO ironflow.outbox (id, workflow_type, workflow_id, payload, created_at, traceparent, tracestate,
            priority, limit_key, rate_key)
        SELECT f.id, f.type, f.workflow_id, f.payload::jsonb, p_now, f.traceparent, f.tracestate,
               coalesce(f.priority, 0), f.limit_key, f.rate_key
          FROM unnest(p_effect_ids, p_effect_types, p_effect_workflow_ids, p_effect_payloads,
                      p_effect_traceparents, p_effect_tracestates,
                      p_effect_priorities, p_effect_limit_keys, p_effect_rate_keys)
               AS f(id, type, workflow_id, payload, traceparent, tracestate, priority, limit_key, rate_key)
         WHERE f.id IS NOT NULL;
    END IF;
    IF cardinality(p_cancel_types) > 0 THEN
        UPDATE ironflow.timers t SET processed_at = p_now, locked_until = NULL, locked_by = NULL
          FROM unnest(p_cancel_types, p_cancel_ids, p_cancel_keys) AS c(type, id, key)
         WHERE t.workflow_type = c.type AND t.workflow_id = c.id AND t.key = c.key AND t.processed_at IS NULL;
    END IF;
    IF cardinality(p_timer_ids) > 0 THEN
        INSERT INTO ironflow.timers (id, workflow_type, workflow_id, fire_at, input, key, created_at,
            traceparent, tracestate, priority)
        SELECT t.id, t.type, t.workflow_id, t.fire_at, t.input::jsonb, t.key, p_now, t.traceparent, t.tracestate,
               coalesce(t.priority, 0)
          FROM unnest(p_timer_ids, p_timer_types, p_timer_workflow_ids, p_timer_fire_at, p_timer_inputs, p_timer_keys,
                      p_timer_traceparents, p_timer_tracestates, p_timer_priorities)
               AS t(id, type, workflow_id, fire_at, input, key, traceparent, tracestate, priority)
         WHERE t.id IS NOT NULL
        ON CONFLICT (workflow_type, workflow_id, key) WHERE key IS NOT NULL AND processed_at IS NULL
        DO UPDATE SET fire_at = EXCLUDED.fire_at, input = EXCLUDED.input, created_at = EXCLUDED.created_at,
            attempts = 0, last_error = NULL, locked_until = NULL, locked_by = NULL, dead_lettered_at = NULL,
            priority = EXCLUDED.priority,
            claimed_at = NULL, traceparent = EXCLUDED.traceparent, tracestate = EXCLUDED.tracestate;
    END IF;
    IF cardinality(p_instance_types) > 0 THEN
        UPDATE ironflow.workflow_instances i SET
            event_count = i.event_count + u.events,
            last_event_at = p_now,
            completed_at = CASE WHEN u.completed THEN p_now ELSE i.completed_at END,
            snapshot_sequence = coalesce(u.snapshot_sequence, i.snapshot_sequence),
            snapshot_data = CASE WHEN u.snapshot_sequence IS NULL THEN i.snapshot_data ELSE u.snapshot_data::jsonb END,
            snapshot_version = CASE WHEN u.snapshot_sequence IS NULL THEN i.snapshot_version ELSE u.snapshot_version END,
            snapshot_at = CASE WHEN u.snapshot_sequence IS NULL THEN i.snapshot_at ELSE p_now END
          FROM unnest(p_instance_types, p_instance_ids, p_instance_events, p_instance_completed,
                      p_snapshot_sequences, p_snapshot_data, p_snapshot_versions)
               AS u(type, id, events, completed, snapshot_sequence, snapshot_data, snapshot_version)
         WHERE i.workflow_type = u.type AND i.workflow_id = u.id;
    END IF;
    RETURN v_settled;
END
$$;
