-- Workflows, LLM cost rows and dead letters.

CREATE TABLE workflows (
    id             text PRIMARY KEY,
    type           text NOT NULL,
    user_id        text NOT NULL,
    status         text NOT NULL CHECK (status IN ('running', 'retrying', 'completed', 'failed')),
    priority       text NOT NULL DEFAULT 'medium',
    attempts       integer NOT NULL DEFAULT 0,
    provider       text,
    result         jsonb,
    error_code     text,
    error_message  text,
    trace_id       text,
    lease_owner    text,
    lease_until    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz
);
CREATE INDEX workflows_status_idx ON workflows (status, updated_at);
CREATE INDEX workflows_user_idx ON workflows (user_id, created_at);

CREATE TABLE llm_calls (
    id                 bigserial PRIMARY KEY,
    workflow_id        text NOT NULL,
    user_id            text NOT NULL,
    intent_type        text NOT NULL,
    provider           text NOT NULL,
    model              text NOT NULL,
    prompt_tokens      integer NOT NULL DEFAULT 0,
    completion_tokens  integer NOT NULL DEFAULT 0,
    usage_source       text NOT NULL CHECK (usage_source IN ('api', 'estimated', 'none')),
    cost_usd           numeric(14, 8) NOT NULL DEFAULT 0,
    price_version      text NOT NULL,
    duration_ms        integer NOT NULL,
    attempt            integer NOT NULL,
    receive_count      integer NOT NULL DEFAULT 1,
    cache_hit          boolean NOT NULL DEFAULT false,
    outcome            text NOT NULL,
    error_code         text,
    trace_id           text,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX llm_calls_workflow_idx ON llm_calls (workflow_id);
CREATE INDEX llm_calls_user_day_idx ON llm_calls (user_id, created_at);
CREATE INDEX llm_calls_provider_day_idx ON llm_calls (provider, created_at);
CREATE INDEX llm_calls_intent_day_idx ON llm_calls (intent_type, created_at);

CREATE TABLE dead_letters (
    id             bigserial PRIMARY KEY,
    message_id     text NOT NULL,
    workflow_id    text,
    intent_type    text,
    user_id        text,
    error_class    text NOT NULL CHECK (error_class IN ('malformed', 'permanent', 'exhausted')),
    error_code     text NOT NULL,
    error_message  text NOT NULL,
    receive_count  integer NOT NULL,
    history        jsonb NOT NULL DEFAULT '[]'::jsonb,
    source_queue   text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letters_message_idx ON dead_letters (message_id);
CREATE INDEX dead_letters_created_idx ON dead_letters (created_at);
