-- ironflow for Effect (additive): the two steps of an execute as functions,
-- so each is one round trip and PostgreSQL plans their statements once per
-- session instead of parsing and planning them on every execute.

-- Creates the instance if missing (recording the unique key only then), locks
-- it, and unless it is completed returns its snapshot (when written under
-- p_snapshot_version) and the events after it as [sequence, version, payload].
CREATE FUNCTION ironflow.lock_instance(
    p_type text,
    p_id text,
    p_unique_key text,
    p_now timestamptz,
    p_snapshot_version text
)
RETURNS TABLE (out_completed boolean, out_snapshot_sequence bigint, out_snapshot_data jsonb, out_events jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_completed timestamptz;
    v_snapshot_sequence bigint;
    v_snapshot_data jsonb;
    v_snapshot_version text;
BEGIN
    SELECT i.completed_at, i.snapshot_sequence, i.snapshot_data, i.snapshot_version
      INTO v_completed, v_snapshot_sequence, v_snapshot_data, v_snapshot_version
      FROM ironflow.workflow_instances i
     WHERE i.workflow_type = p_type AND i.workflow_id = p_id
       FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO ironflow.workflow_instances (workflow_type, workflow_id, unique_key, created_at)
        VALUES (p_type, p_id, p_unique_key, p_now)
        ON CONFLICT (workflow_type, workflow_id) DO NOTHING;
        IF NOT FOUND THEN
            -- Another transaction created it first: wait for its lock like any later input.
            SELECT i.completed_at, i.snapshot_sequence, i.snapshot_data, i.snapshot_version
              INTO v_completed, v_snapshot_sequence, v_snapshot_data, v_snapshot_version
              FROM ironflow.workflow_instances i
             WHERE i.workflow_type = p_type AND i.workflow_id = p_id
               FOR UPDATE;
        END IF;
    END IF;
    IF v_completed IS NOT NULL THEN
        RETURN QUERY SELECT true, NULL::bigint, NULL::jsonb, NULL::jsonb;
        RETURN;
    END IF;
    IF p_snapshot_version IS NULL OR v_snapshot_version IS DISTINCT FROM p_snapshot_version THEN
        v_snapshot_sequence := NULL;
        v_snapshot_data := NULL;
    END IF;
    RETURN QUERY SELECT false, v_snapshot_sequence, v_snapshot_data,
        coalesce((SELECT jsonb_agg(jsonb_build_array(e.sequence, e.event_version, e.payload) ORDER BY e.sequence)
                    FROM ironflow.events e
                   WHERE e.workflow_type = p_type AND e.workflow_id = p_id
                     AND e.sequence > coalesce(v_snapshot_sequence, 0)), '[]'::jsonb);
END
$$;

-- Writes an accepted decision, in ironflow's order: observation, events,
-- effects, timer cancellations, timers (keyed ones upserted with their retry
-- state reset), then the instance's counters, completion and snapshot.
CREATE FUNCTION ironflow.append_decision(
    p_type text,
    p_id text,
    p_now timestamptz,
    p_first_sequence bigint,
    p_event_version integer,
    p_events text[],
    p_effect_ids uuid[],
    p_effects text[],
    p_cancel_keys text[],
    p_timer_ids uuid[],
    p_timer_fire_at timestamptz[],
    p_timer_inputs text[],
    p_timer_keys text[],
    p_completed boolean,
    p_observation_type text,
    p_observation_payload text,
    p_snapshot_sequence bigint,
    p_snapshot_data text,
    p_snapshot_version text
)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_observation_type IS NOT NULL THEN
        INSERT INTO ironflow.input_observations (workflow_type, workflow_id, input_type, payload, outcome, observed_at)
        VALUES (p_type, p_id, p_observation_type, p_observation_payload::jsonb, 'accepted', p_now);
    END IF;
    INSERT INTO ironflow.events (workflow_type, workflow_id, sequence, payload, event_version, created_at)
    SELECT p_type, p_id, p_first_sequence + t.ord - 1, t.payload::jsonb, p_event_version, p_now
      FROM unnest(p_events) WITH ORDINALITY AS t(payload, ord);
    IF cardinality(p_effects) > 0 THEN
        INSERT INTO ironflow.outbox (id, workflow_type, workflow_id, payload, created_at)
        SELECT t.id, p_type, p_id, t.payload::jsonb, p_now
          FROM unnest(p_effect_ids, p_effects) AS t(id, payload);
    END IF;
    IF cardinality(p_cancel_keys) > 0 THEN
        UPDATE ironflow.timers SET processed_at = p_now, locked_until = NULL, locked_by = NULL
         WHERE workflow_type = p_type AND workflow_id = p_id
           AND processed_at IS NULL AND key = ANY(p_cancel_keys);
    END IF;
    IF cardinality(p_timer_ids) > 0 THEN
        INSERT INTO ironflow.timers (id, workflow_type, workflow_id, fire_at, input, key, created_at)
        SELECT t.id, p_type, p_id, t.fire_at, t.input::jsonb, t.key, p_now
          FROM unnest(p_timer_ids, p_timer_fire_at, p_timer_inputs, p_timer_keys) AS t(id, fire_at, input, key)
        ON CONFLICT (workflow_type, workflow_id, key) WHERE key IS NOT NULL AND processed_at IS NULL
        DO UPDATE SET fire_at = EXCLUDED.fire_at, input = EXCLUDED.input, created_at = EXCLUDED.created_at,
            attempts = 0, last_error = NULL, locked_until = NULL, locked_by = NULL, dead_lettered_at = NULL;
    END IF;
    UPDATE ironflow.workflow_instances SET
        event_count = event_count + cardinality(p_events),
        last_event_at = p_now,
        completed_at = CASE WHEN p_completed THEN p_now ELSE completed_at END,
        snapshot_sequence = coalesce(p_snapshot_sequence, snapshot_sequence),
        snapshot_data = CASE WHEN p_snapshot_sequence IS NULL THEN snapshot_data ELSE p_snapshot_data::jsonb END,
        snapshot_version = CASE WHEN p_snapshot_sequence IS NULL THEN snapshot_version ELSE p_snapshot_version END,
        snapshot_at = CASE WHEN p_snapshot_sequence IS NULL THEN snapshot_at ELSE p_now END
     WHERE workflow_type = p_type AND workflow_id = p_id;
END
$$;
