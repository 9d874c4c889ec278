-- Two more cost rollups beside cost_daily (0011), for windows of weeks and months:
--   cost_monthly: llm_calls summed per UTC month, user, provider, model and intent type;
--                 a window's whole months by user come from it (a user with a couple of
--                 calls a day has one row a month instead of thirty).
--   cost_day_mix: llm_calls summed per UTC day, provider, model and intent type, without
--                 the user; the per-day chart and every breakdown not by user read it.
-- Exact by construction, like cost_daily: the same statement-level triggers on llm_calls
-- now add (and on UPDATE or DELETE take away) each statement's rows in all three rollups,
-- in the writer's own transaction.
CREATE TABLE cost_monthly (
    month              date NOT NULL,  -- the first day of the UTC month
    user_id            text NOT NULL,
    provider           text NOT NULL,
    model              text NOT NULL,
    intent_type        text NOT NULL,
    calls              bigint NOT NULL,
    cache_hits         bigint NOT NULL,
    prompt_tokens      bigint NOT NULL,
    completion_tokens  bigint NOT NULL,
    cost_usd           numeric NOT NULL,
    PRIMARY KEY (month, user_id, provider, model, intent_type)
        INCLUDE (calls, cache_hits, prompt_tokens, completion_tokens, cost_usd)
);
CREATE INDEX cost_monthly_user_idx ON cost_monthly (user_id, month);

CREATE TABLE cost_day_mix (
    day                date NOT NULL,
    provider           text NOT NULL,
    model              text NOT NULL,
    intent_type        text NOT NULL,
    calls              bigint NOT NULL,
    cache_hits         bigint NOT NULL,
    prompt_tokens      bigint NOT NULL,
    completion_tokens  bigint NOT NULL,
    cost_usd           numeric NOT NULL,
    PRIMARY KEY (day, provider, model, intent_type)
        INCLUDE (calls, cache_hits, prompt_tokens, completion_tokens, cost_usd)
);

-- One template applied to each rollup: %1$s the table, %2$s its key columns, %3$s the
-- same keys computed from llm_calls rows, %4$s the sign, %5$s the transition table.
CREATE OR REPLACE FUNCTION cost_daily_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
    upsert constant text := $q$
        INSERT INTO %1$s AS d (%2$s, calls, cache_hits, prompt_tokens, completion_tokens,
                               cost_usd)
        SELECT %3$s, %4$scount(*), %4$scount(*) FILTER (WHERE cache_hit),
               %4$ssum(prompt_tokens), %4$ssum(completion_tokens), %4$ssum(cost_usd)
          FROM %5$s GROUP BY %2$s ORDER BY %2$s
        ON CONFLICT (%2$s) DO UPDATE
           SET calls = d.calls + EXCLUDED.calls, cache_hits = d.cache_hits + EXCLUDED.cache_hits,
               prompt_tokens = d.prompt_tokens + EXCLUDED.prompt_tokens,
               completion_tokens = d.completion_tokens + EXCLUDED.completion_tokens,
               cost_usd = d.cost_usd + EXCLUDED.cost_usd$q$;
    emptied constant text := $q$
        DELETE FROM %1$s WHERE calls = 0 AND (%2$s) IN (SELECT %3$s FROM gone)$q$;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('cost_daily', 'day, user_id, provider, model, intent_type',
         '(created_at AT TIME ZONE ''UTC'')::date AS day, user_id, provider, model, intent_type'),
        ('cost_monthly', 'month, user_id, provider, model, intent_type',
         'date_trunc(''month'', created_at AT TIME ZONE ''UTC'')::date AS month, user_id,'
         ' provider, model, intent_type'),
        ('cost_day_mix', 'day, provider, model, intent_type',
         '(created_at AT TIME ZONE ''UTC'')::date AS day, provider, model, intent_type')
    ) AS t (tab, keys, exprs) LOOP
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            EXECUTE format(upsert, r.tab, r.keys, r.exprs, '-', 'gone');
            EXECUTE format(emptied, r.tab, r.keys, r.exprs);
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            EXECUTE format(upsert, r.tab, r.keys, r.exprs, '', 'added');
        END IF;
    END LOOP;
    RETURN NULL;
END
$$;

-- As in 0011: no cost row may be written between the backfill and the new function.
-- cost_daily is exact under the lock, so the backfill reads it (far fewer rows).
LOCK TABLE llm_calls IN SHARE MODE;

INSERT INTO cost_monthly (month, user_id, provider, model, intent_type, calls, cache_hits,
                          prompt_tokens, completion_tokens, cost_usd)
SELECT date_trunc('month', day)::date, user_id, provider, model, intent_type, sum(calls),
       sum(cache_hits), sum(prompt_tokens), sum(completion_tokens), sum(cost_usd)
  FROM cost_daily GROUP BY 1, 2, 3, 4, 5;

INSERT INTO cost_day_mix (day, provider, model, intent_type, calls, cache_hits,
                          prompt_tokens, completion_tokens, cost_usd)
SELECT day, provider, model, intent_type, sum(calls), sum(cache_hits), sum(prompt_tokens),
       sum(completion_tokens), sum(cost_usd)
  FROM cost_daily GROUP BY 1, 2, 3, 4;
