-- The per-day cost rollup the cost pages read, and the console's sessions and failed
-- sign-ins (kept in PostgreSQL so that a restart or a second console keeps people in).

-- cost_daily: llm_calls summed per UTC day, user, provider, model and intent type.
-- Exact by construction: statement-level triggers add (and, on UPDATE or DELETE, take
-- away) the rows each statement wrote, aggregated per statement, in the writer's own
-- transaction. One group commit of 200 completions is one upsert of its distinct keys
-- (sorted, so concurrent batches lock them in the same order), never one per call.
CREATE TABLE cost_daily (
    day                date NOT NULL,
    user_id            text NOT NULL,
    provider           text NOT NULL,
    model              text NOT NULL,
    intent_type        text NOT NULL,
    calls              bigint NOT NULL,
    cache_hits         bigint NOT NULL,
    prompt_tokens      bigint NOT NULL,
    completion_tokens  bigint NOT NULL,
    cost_usd           numeric NOT NULL,
    -- the measures ride in the key's index: a window of whole days is an index-only scan
    PRIMARY KEY (day, user_id, provider, model, intent_type)
        INCLUDE (calls, cache_hits, prompt_tokens, completion_tokens, cost_usd)
);
CREATE INDEX cost_daily_user_idx ON cost_daily (user_id, day);

CREATE FUNCTION cost_daily_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO cost_daily AS d (day, user_id, provider, model, intent_type, calls,
                                     cache_hits, prompt_tokens, completion_tokens, cost_usd)
        SELECT (created_at AT TIME ZONE 'UTC')::date, user_id, provider, model, intent_type,
               -count(*), -count(*) FILTER (WHERE cache_hit), -sum(prompt_tokens),
               -sum(completion_tokens), -sum(cost_usd)
          FROM gone GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (day, user_id, provider, model, intent_type) DO UPDATE
           SET calls = d.calls + EXCLUDED.calls, cache_hits = d.cache_hits + EXCLUDED.cache_hits,
               prompt_tokens = d.prompt_tokens + EXCLUDED.prompt_tokens,
               completion_tokens = d.completion_tokens + EXCLUDED.completion_tokens,
               cost_usd = d.cost_usd + EXCLUDED.cost_usd;
        DELETE FROM cost_daily WHERE calls = 0 AND (day, user_id, provider, model, intent_type)
            IN (SELECT (created_at AT TIME ZONE 'UTC')::date, user_id, provider, model,
                       intent_type FROM gone);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO cost_daily AS d (day, user_id, provider, model, intent_type, calls,
                                     cache_hits, prompt_tokens, completion_tokens, cost_usd)
        SELECT (created_at AT TIME ZONE 'UTC')::date, user_id, provider, model, intent_type,
               count(*), count(*) FILTER (WHERE cache_hit), sum(prompt_tokens),
               sum(completion_tokens), sum(cost_usd)
          FROM added GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (day, user_id, provider, model, intent_type) DO UPDATE
           SET calls = d.calls + EXCLUDED.calls, cache_hits = d.cache_hits + EXCLUDED.cache_hits,
               prompt_tokens = d.prompt_tokens + EXCLUDED.prompt_tokens,
               completion_tokens = d.completion_tokens + EXCLUDED.completion_tokens,
               cost_usd = d.cost_usd + EXCLUDED.cost_usd;
    END IF;
    RETURN NULL;
END
$$;

-- No cost row may be written between the backfill's snapshot and the triggers: writers
-- wait for this migration's commit (about 12 s a million rows) and then meet the triggers.
LOCK TABLE llm_calls IN SHARE MODE;

INSERT INTO cost_daily (day, user_id, provider, model, intent_type, calls, cache_hits,
                        prompt_tokens, completion_tokens, cost_usd)
SELECT (created_at AT TIME ZONE 'UTC')::date, user_id, provider, model, intent_type,
       count(*), count(*) FILTER (WHERE cache_hit), sum(prompt_tokens),
       sum(completion_tokens), sum(cost_usd)
  FROM llm_calls GROUP BY 1, 2, 3, 4, 5;

CREATE TRIGGER llm_calls_cost_daily_insert AFTER INSERT ON llm_calls
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION cost_daily_apply();
CREATE TRIGGER llm_calls_cost_daily_update AFTER UPDATE ON llm_calls
    REFERENCING OLD TABLE AS gone NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION cost_daily_apply();
CREATE TRIGGER llm_calls_cost_daily_delete AFTER DELETE ON llm_calls
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION cost_daily_apply();

-- Console sessions: only the SHA-256 of the cookie is kept (the cookie itself is a
-- bearer secret); the CSRF token is not a credential on its own (it is on every page);
-- token_tag is a hash of the sign-in token's hash (so a rotated token ends its sessions).
CREATE TABLE console_sessions (
    cookie_hash  text PRIMARY KEY,
    name         text NOT NULL,
    role         text NOT NULL CHECK (role IN ('viewer', 'operator')),
    token_tag    text NOT NULL,
    csrf         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);

-- Failed sign-ins per client address, for the sign-in rate limit (never the token).
CREATE TABLE console_sign_in_failures (
    id      bigserial PRIMARY KEY,
    remote  text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_sign_in_failures_remote_idx ON console_sign_in_failures (remote, at);
CREATE INDEX console_sign_in_failures_at_idx ON console_sign_in_failures (at);
