-- Spend control (issue 14): budgets, their use per period, alerts fired, A/B variants.
--
-- budget_usage holds, per budget and period, what was spent (settled real cost) and what
-- worker processes hold leased (allowance taken in chunks, not yet spent). A process may
-- lease only while spent + leased stays within the amount, so the sum of spend can pass
-- the amount only by what a reservation under-estimated. One row update per chunk, not
-- per call. budget_alerts makes each threshold fire once per period fleet-wide.

CREATE TABLE IF NOT EXISTS budgets (
    id          bigserial PRIMARY KEY,
    scope       text NOT NULL CHECK (scope IN ('global', 'user', 'intent', 'model')),
    subject     text NOT NULL DEFAULT '',
    period      text NOT NULL CHECK (period IN ('day', 'month')),
    amount_usd  numeric(14, 6) NOT NULL CHECK (amount_usd >= 0),
    action      text NOT NULL DEFAULT 'hold' CHECK (action IN ('hold', 'dead_letter', 'alert')),
    thresholds  integer[] NOT NULL DEFAULT '{50,80,100}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (scope, subject, period)
);

CREATE TABLE IF NOT EXISTS budget_usage (
    budget_id    bigint NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,
    period_start date NOT NULL,
    spent_usd    numeric(18, 8) NOT NULL DEFAULT 0,
    leased_usd   numeric(18, 8) NOT NULL DEFAULT 0,
    refused      integer NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (budget_id, period_start)
);

CREATE TABLE IF NOT EXISTS budget_alerts (
    budget_id    bigint NOT NULL REFERENCES budgets (id) ON DELETE CASCADE,
    period_start date NOT NULL,
    threshold    integer NOT NULL,
    spent_usd    numeric(18, 8) NOT NULL,
    fired_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (budget_id, period_start, threshold)
);

ALTER TABLE workflows ADD COLUMN IF NOT EXISTS variant text;
ALTER TABLE llm_calls ADD COLUMN IF NOT EXISTS variant text;
ALTER TABLE llm_calls ADD COLUMN IF NOT EXISTS repair boolean NOT NULL DEFAULT false;
CREATE INDEX IF NOT EXISTS llm_calls_variant_idx ON llm_calls (variant, created_at)
    WHERE variant IS NOT NULL;
CREATE INDEX IF NOT EXISTS workflows_variant_idx ON workflows (variant, created_at)
    WHERE variant IS NOT NULL;
