-- Response cache for identical LLM requests (provider, model, messages, parameters).

CREATE TABLE llm_cache (
    key         text PRIMARY KEY,
    provider    text NOT NULL,
    model       text NOT NULL,
    response    jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX llm_cache_expires_idx ON llm_cache (expires_at);
