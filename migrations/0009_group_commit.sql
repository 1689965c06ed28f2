-- ironflow for Effect (additive): group transactions. One transaction applies
-- the inputs of many instances (results of handlers, timer firings, concurrent
-- executes) and settles the queue rows they came from, so a handler's result is
-- applied at most once and a timer's input exactly once.

-- When a row was claimed (for attempts that run long); clock offsets of runtimes.
ALTER TABLE ironflow.outbox ADD COLUMN claimed_at timestamptz;
ALTER TABLE ironflow.timers ADD COLUMN claimed_at timestamptz;
ALTER TABLE ironflow.workers ADD COLUMN clock_offset_ms double precision;
ALTER TABLE ironflow.workers ADD COLUMN claims_paused text;

-- Creates the missing instances (recording unique keys only then), locks every
-- requested instance in one fixed order (byte order of type, then id: groups and
-- single executes never wait on each other in a cycle), then locks the requested
-- queue rows still held by p_locked_by. Returns one row per requested instance
-- (ord = its 1-based position): status 'active', 'completed' or 'missing' (not
-- created: its unique key is held by another active instance), whether this
-- transaction created it, the snapshot (when written under the requested
-- version) and the events after it as [sequence, version, payload]; and one row
-- with ord 0 holding the fenced row ids.
CREATE FUNCTION ironflow.lock_group(
    p_now timestamptz,
    p_types text[],
    p_ids text[],
    p_unique_keys text[],
    p_snapshot_versions text[],
    p_queue text,
    p_row_ids uuid[],
    p_locked_by text
)
RETURNS TABLE (
    ord bigint,
    status text,
    created boolean,
    snapshot_sequence bigint,
    snapshot_data jsonb,
    events jsonb,
    fenced uuid[]
)
LANGUAGE plpgsql AS $$
DECLARE
    v_created_types text[];
    v_created_ids text[];
    v_fenced uuid[] := '{}';
    v_existing bigint;
BEGIN
    -- Usually every instance exists already: then no insert is attempted at all (a speculative insert
    -- per instance costs about as much as the lock itself).
    SELECT count(*) INTO v_existing
      FROM ironflow.workflow_instances i
      JOIN unnest(p_types, p_ids) AS t(type, id) ON i.workflow_type = t.type AND i.workflow_id = t.id;
    v_created_types := '{}';
    v_created_ids := '{}';
    IF v_existing < cardinality(p_types) THEN
    WITH inserted AS (
        INSERT INTO ironflow.workflow_instances (workflow_type, workflow_id, unique_key, created_at)
        SELECT t.type, t.id, t.unique_key, p_now
          FROM unnest(p_types, p_ids, p_unique_keys) AS t(type, id, unique_key)
         ORDER BY t.type COLLATE "C", t.id COLLATE "C"
        ON CONFLICT DO NOTHING
        RETURNING workflow_type, workflow_id
    )
    SELECT coalesce(array_agg(workflow_type), '{}'), coalesce(array_agg(workflow_id), '{}')
      INTO v_created_types, v_created_ids
      FROM inserted;
    END IF;

    PERFORM 1
       FROM ironflow.workflow_instances i
       JOIN unnest(p_types, p_ids) AS t(type, id) ON i.workflow_type = t.type AND i.workflow_id = t.id
      ORDER BY i.workflow_type COLLATE "C", i.workflow_id COLLATE "C"
        FOR UPDATE OF i;

    IF cardinality(p_row_ids) > 0 THEN
        IF p_queue = 'effect' THEN
            SELECT coalesce(array_agg(s.id), '{}') INTO v_fenced FROM (
                SELECT o.id FROM ironflow.outbox o
                 WHERE o.id = ANY(p_row_ids) AND o.locked_by = p_locked_by
                   AND o.processed_at IS NULL AND o.dead_lettered_at IS NULL
                 ORDER BY o.id
                   FOR UPDATE) s;
        ELSE
            SELECT coalesce(array_agg(s.id), '{}') INTO v_fenced FROM (
                SELECT t.id FROM ironflow.timers t
                 WHERE t.id = ANY(p_row_ids) AND t.locked_by = p_locked_by
                   AND t.processed_at IS NULL AND t.dead_lettered_at IS NULL
                 ORDER BY t.id
                   FOR UPDATE) s;
        END IF;
    END IF;

    RETURN QUERY SELECT 0::bigint, 'fence'::text, false, NULL::bigint, NULL::jsonb, NULL::jsonb, v_fenced;

    RETURN QUERY
    SELECT r.ord,
           CASE WHEN i.workflow_id IS NULL THEN 'missing'
                WHEN i.completed_at IS NOT NULL THEN 'completed'
                ELSE 'active' END,
           EXISTS (SELECT 1 FROM unnest(v_created_types, v_created_ids) AS c(type, id)
                    WHERE c.type = r.type AND c.id = r.id),
           s.sequence,
           s.data,
           CASE WHEN i.workflow_id IS NULL OR i.completed_at IS NOT NULL THEN NULL
                ELSE coalesce((
                    SELECT jsonb_agg(jsonb_build_array(e.sequence, e.event_version, e.payload) ORDER BY e.sequence)
                      FROM ironflow.events e
                     WHERE e.workflow_type = r.type AND e.workflow_id = r.id
                       AND e.sequence > coalesce(s.sequence, 0)), '[]'::jsonb) END
           , NULL::uuid[]
      FROM unnest(p_types, p_ids, p_snapshot_versions) WITH ORDINALITY AS r(type, id, snapshot_version, ord)
      LEFT JOIN ironflow.workflow_instances i ON i.workflow_type = r.type AND i.workflow_id = r.id
      LEFT JOIN LATERAL (
          SELECT i.snapshot_sequence AS sequence, i.snapshot_data AS data
           WHERE i.completed_at IS NULL AND r.snapshot_version IS NOT NULL
             AND i.snapshot_version IS NOT DISTINCT FROM r.snapshot_version
      ) s ON true;
END
$$;

-- Settles claimed rows of one queue, fenced by the lease: completed (processed),
-- failed attempts (retry at a time, or dead; a handled dead letter is processed
-- too) and released ones. Returns the ids it changed.
CREATE FUNCTION ironflow.settle_rows(
    p_now timestamptz,
    p_queue text,
    p_locked_by text,
    p_completed uuid[],
    p_failed uuid[],
    p_failed_errors text[],
    p_failed_retry_at timestamptz[],
    p_failed_handled boolean[],
    p_released uuid[]
)
RETURNS uuid[]
LANGUAGE plpgsql AS $$
DECLARE
    v_settled uuid[];
BEGIN
    IF p_queue = 'effect' THEN
        WITH done AS (
            UPDATE ironflow.outbox SET processed_at = p_now, locked_until = NULL, locked_by = NULL
             WHERE id = ANY(p_completed) AND locked_by = p_locked_by AND processed_at IS NULL
            RETURNING id
        ), failed AS (
            UPDATE ironflow.outbox o SET attempts = o.attempts + 1, last_error = f.error, locked_by = NULL,
                   locked_until = f.retry_at,
                   dead_lettered_at = CASE WHEN f.retry_at IS NULL THEN p_now END,
                   processed_at = CASE WHEN f.handled THEN p_now END
              FROM unnest(p_failed, p_failed_errors, p_failed_retry_at, p_failed_handled) AS f(id, error, retry_at, handled)
             WHERE o.id = f.id AND o.locked_by = p_locked_by AND o.processed_at IS NULL
            RETURNING o.id
        ), released AS (
            UPDATE ironflow.outbox SET locked_until = NULL, locked_by = NULL
             WHERE id = ANY(p_released) AND locked_by = p_locked_by AND processed_at IS NULL
            RETURNING id
        )
        SELECT coalesce(array_agg(x.id), '{}') INTO v_settled
          FROM (SELECT id FROM done UNION ALL SELECT id FROM failed UNION ALL SELECT id FROM released) x;
    ELSE
        WITH done AS (
            UPDATE ironflow.timers SET processed_at = p_now, locked_until = NULL, locked_by = NULL
             WHERE id = ANY(p_completed) AND locked_by = p_locked_by AND processed_at IS NULL
            RETURNING id
        ), failed AS (
            UPDATE ironflow.timers t SET attempts = t.attempts + 1, last_error = f.error, locked_by = NULL,
                   locked_until = f.retry_at,
                   dead_lettered_at = CASE WHEN f.retry_at IS NULL THEN p_now END,
                   processed_at = CASE WHEN f.handled THEN p_now END
              FROM unnest(p_failed, p_failed_errors, p_failed_retry_at, p_failed_handled) AS f(id, error, retry_at, handled)
             WHERE t.id = f.id AND t.locked_by = p_locked_by AND t.processed_at IS NULL
            RETURNING t.id
        ), released AS (
            UPDATE ironflow.timers SET locked_until = NULL, locked_by = NULL
             WHERE id = ANY(p_released) AND locked_by = p_locked_by AND processed_at IS NULL
            RETURNING id
        )
        SELECT coalesce(array_agg(x.id), '{}') INTO v_settled
          FROM (SELECT id FROM done UNION ALL SELECT id FROM failed UNION ALL SELECT id FROM released) x;
    END IF;
    RETURN v_settled;
END
$$;

-- Writes one group: the settlements of its rows first (so a timer that re-arms
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
    p_snapshot_versions text[]
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
        INSERT INTO ironflow.outbox (id, workflow_type, workflow_id, payload, created_at)
        SELECT f.id, f.type, f.workflow_id, f.payload::jsonb, p_now
          FROM unnest(p_effect_ids, p_effect_types, p_effect_workflow_ids, p_effect_payloads)
               AS f(id, type, workflow_id, payload);
    END IF;
    IF cardinality(p_cancel_types) > 0 THEN
        UPDATE ironflow.timers t SET processed_at = p_now, locked_until = NULL, locked_by = NULL
          FROM unnest(p_cancel_types, p_cancel_ids, p_cancel_keys) AS c(type, id, key)
         WHERE t.workflow_type = c.type AND t.workflow_id = c.id AND t.key = c.key AND t.processed_at IS NULL;
    END IF;
    IF cardinality(p_timer_ids) > 0 THEN
        INSERT INTO ironflow.timers (id, workflow_type, workflow_id, fire_at, input, key, created_at)
        SELECT t.id, t.type, t.workflow_id, t.fire_at, t.input::jsonb, t.key, p_now
          FROM unnest(p_timer_ids, p_timer_types, p_timer_workflow_ids, p_timer_fire_at, p_timer_inputs, p_timer_keys)
               AS t(id, type, workflow_id, fire_at, input, key)
        ON CONFLICT (workflow_type, workflow_id, key) WHERE key IS NOT NULL AND processed_at IS NULL
        DO UPDATE SET fire_at = EXCLUDED.fire_at, input = EXCLUDED.input, created_at = EXCLUDED.created_at,
            attempts = 0, last_error = NULL, locked_until = NULL, locked_by = NULL, dead_lettered_at = NULL,
            claimed_at = NULL;
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
