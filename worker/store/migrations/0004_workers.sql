-- Live worker processes, for BacklogPerWorker and the live view.

CREATE TABLE workers (
    id          text PRIMARY KEY,
    host        text NOT NULL,
    pid         integer NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    in_flight   integer NOT NULL DEFAULT 0
);

CREATE TABLE replays (
    id                 bigserial PRIMARY KEY,
    dlq_message_id     text NOT NULL,
    source_message_id  text NOT NULL,
    new_message_id     text,
    workflow_id        text,
    replay_count       integer NOT NULL,
    mode               text NOT NULL CHECK (mode IN ('copy', 'native')),
    replayed_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX replays_source_idx ON replays (source_message_id);
