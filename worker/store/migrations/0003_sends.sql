-- OnlyFans sends: the ledger, the per-pair spacing state, campaign parents.

ALTER TABLE workflows DROP CONSTRAINT workflows_status_check;
ALTER TABLE workflows ADD CONSTRAINT workflows_status_check
    CHECK (status IN ('running', 'retrying', 'waiting', 'completed', 'failed'));
ALTER TABLE workflows ADD COLUMN parent_id text;
ALTER TABLE workflows ADD COLUMN progress jsonb;
CREATE INDEX workflows_parent_idx ON workflows (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE send_pairs (
    pair_key      text PRIMARY KEY,
    last_slot     timestamptz NOT NULL,
    last_sent_at  timestamptz,
    last_send_id  bigint
);

CREATE TABLE onlyfans_sends (
    id                  bigserial PRIMARY KEY,
    idempotency_key     text NOT NULL UNIQUE,
    workflow_id         text NOT NULL,
    campaign_id         text,
    user_id             text NOT NULL,
    recipient_id        text NOT NULL,
    pair_key            text NOT NULL,
    slot_at             timestamptz NOT NULL,
    status              text NOT NULL
        CHECK (status IN ('scheduled', 'sending', 'sent', 'failed', 'superseded')),
    message             text NOT NULL,
    enqueued            boolean NOT NULL DEFAULT false,
    attempts            integer NOT NULL DEFAULT 0,
    superseded_by       bigint,
    gateway_message_id  text,
    error_code          text,
    error_message       text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz
);
CREATE INDEX onlyfans_sends_pair_idx ON onlyfans_sends (pair_key, status, slot_at);
CREATE INDEX onlyfans_sends_campaign_idx ON onlyfans_sends (campaign_id, status)
    WHERE campaign_id IS NOT NULL;
CREATE INDEX onlyfans_sends_workflow_idx ON onlyfans_sends (workflow_id);
