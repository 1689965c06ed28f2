-- ironflow 0.4.0: 20260422000001_add_observation_outcome.sql
ALTER TABLE ironflow.input_observations
    ADD COLUMN outcome text NOT NULL DEFAULT 'accepted',
    ADD COLUMN rejection_payload jsonb;

ALTER TABLE ironflow.input_observations
    ADD CONSTRAINT input_observations_rejection_payload_matches_outcome
    CHECK (
        (outcome = 'rejected' AND rejection_payload IS NOT NULL)
        OR (outcome <> 'rejected' AND rejection_payload IS NULL)
    );

CREATE INDEX input_observations_rejected_idx
    ON ironflow.input_observations (workflow_type, workflow_id, observed_at DESC)
    WHERE outcome = 'rejected';
