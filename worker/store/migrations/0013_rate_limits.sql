-- Rate control (issue 14, items 3 and 4): fleet-wide pacing state.
--
-- rate_leases: one row per provider key (provider:model or azure:deployment). next_at is
-- the end of the provider time already handed out to worker processes; a process leases
-- a chunk of it (a few calls' worth) in one UPDATE, never one row lock per call.
CREATE TABLE rate_leases (
    key         text PRIMARY KEY,
    next_at     timestamptz NOT NULL,
    paused_at   timestamptz,
    pause_s     double precision
);

-- user_rates: per-user workflow starts, a GCRA (tat = theoretical arrival time).
CREATE TABLE user_rates (
    user_id     text PRIMARY KEY,
    tat         timestamptz NOT NULL
);

-- user_rate_slots: a start slot reserved by a workflow that was postponed; when the
-- message comes back it starts at its slot without being charged again.
CREATE TABLE user_rate_slots (
    workflow_id text PRIMARY KEY,
    user_id     text NOT NULL,
    due_at      timestamptz NOT NULL
);
CREATE INDEX user_rate_slots_due_idx ON user_rate_slots (due_at);
