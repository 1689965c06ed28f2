-- ironflow for Effect (additive): trace context on queue rows. An execute that
-- writes effects and timers while an OpenTelemetry tracer is installed stores
-- its span's W3C trace context (traceparent, tracestate) on each row; the
-- handler or timer firing that runs the row later, in whatever process, makes
-- its span a child of it, so one workflow's spans form one trace. NULL when no
-- tracer was installed (and for rows written before this migration).

ALTER TABLE ironflow.outbox ADD COLUMN traceparent text;
ALTER TABLE ironflow.outbox ADD COLUMN tracestate text;
ALTER TABLE ironflow.timers ADD COLUMN traceparent text;
ALTER TABLE ironflow.timers ADD COLUMN tracestate text;

-- write_group of 0009, redefined with four trailing parameters (defaults: empty) and the two inserts
-- writing them; a keyed timer re-armed by an upsert takes the trace of the decision that re-armed it.
DROP FUNCTION ironflow.write_group(
    timestamptz,
    text,
    text,
    uuid[],
    uuid[],
    text[],
    timestamptz[],
    boolean[],
    uuid[],
    text[],
    text[],
    text[],
    text[],
    text[],
    text[],
    text[],
    text[],
    text[],
    text[],
    bigint[],
    integer[],
    text[],
    uuid[],
    text[],
    text[],
    text[],
    text[],
    text[],
    text[],
    uuid[],
    text[],
    text[],
    timestamptz[],
    text[],
    text[],
    text[],
    text[],
    integer[],
    boolean[],
    bigint[],
    text[],
    text[]
);

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
    p_snapshot_versions text[],
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
        INSERT INTO ironflow.outbox (id, workflow_type, workflow_id, payload, created_at, traceparent, tracestate)
        SELECT f.id, f.type, f.workflow_id, f.payload::jsonb, p_now, f.traceparent, f.tracestate
          FROM unnest(p_effect_ids, p_effect_types, p_effect_workflow_ids, p_effect_payloads,
                      p_effect_traceparents, p_effect_tracestates)
               AS f(id, type, workflow_id, payload, traceparent, tracestate);
    END IF;
    IF cardinality(p_cancel_types) > 0 THEN
        UPDATE ironflow.timers t SET processed_at = p_now, locked_until = NULL, locked_by = NULL
          FROM unnest(p_cancel_types, p_cancel_ids, p_cancel_keys) AS c(type, id, key)
         WHERE t.workflow_type = c.type AND t.workflow_id = c.id AND t.key = c.key AND t.processed_at IS NULL;
    END IF;
    IF cardinality(p_timer_ids) > 0 THEN
        INSERT INTO ironflow.timers (id, workflow_type, workflow_id, fire_at, input, key, created_at,
            traceparent, tracestate)
        SELECT t.id, t.type, t.workflow_id, t.fire_at, t.input::jsonb, t.key, p_now, t.traceparent, t.tracestate
          FROM unnest(p_timer_ids, p_timer_types, p_timer_workflow_ids, p_timer_fire_at, p_timer_inputs, p_timer_keys,
                      p_timer_traceparents, p_timer_tracestates)
               AS t(id, type, workflow_id, fire_at, input, key, traceparent, tracestate)
        ON CONFLICT (workflow_type, workflow_id, key) WHERE key IS NOT NULL AND processed_at IS NULL
        DO UPDATE SET fire_at = EXCLUDED.fire_at, input = EXCLUDED.input, created_at = EXCLUDED.created_at,
            attempts = 0, last_error = NULL, locked_until = NULL, locked_by = NULL, dead_lettered_at = NULL,
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
