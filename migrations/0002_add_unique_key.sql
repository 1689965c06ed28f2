-- ironflow 0.3.0: 20260213000001_add_unique_key.sql
ALTER TABLE ironflow.workflow_instances ADD COLUMN unique_key text;

CREATE UNIQUE INDEX idx_workflow_instances_active_unique_key
    ON ironflow.workflow_instances (workflow_type, unique_key)
    WHERE completed_at IS NULL AND unique_key IS NOT NULL;
