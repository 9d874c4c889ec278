-- The web console (`fleet console`): its audit trail and the indexes its pages read by.
-- Every list is keyset-paginated newest first on (created_at, id); every live figure reads
-- a recent time range; cost pages aggregate a date range from a covering index.

CREATE TABLE console_audit (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text NOT NULL,
    role     text NOT NULL,
    action   text NOT NULL,
    count    integer NOT NULL DEFAULT 0,
    detail   jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS console_audit_at_idx ON console_audit (at DESC, id DESC);

CREATE INDEX IF NOT EXISTS workflows_created_idx ON workflows (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS workflows_type_created_idx ON workflows (type, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS workflows_status_created_idx ON workflows (status, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS workflows_user_created_idx ON workflows (user_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS workflows_completed_idx ON workflows (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS workflows_updated_idx ON workflows (updated_at);

CREATE INDEX IF NOT EXISTS llm_calls_created_cover_idx ON llm_calls (created_at)
    INCLUDE (user_id, provider, intent_type, model, prompt_tokens, completion_tokens, cost_usd);
CREATE INDEX IF NOT EXISTS dead_letters_workflow_idx ON dead_letters (workflow_id) WHERE workflow_id IS NOT NULL;
