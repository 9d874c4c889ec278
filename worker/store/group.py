"""Group commit: the claims and completions of many workflows in one statement each.

Every message costs a claim (take the lease) and a completion (result, cost
rows, status). Run one by one they are two round trips a message; batched by
``worker.batcher.Batcher`` (``parallel`` mode) they are two round trips per
batch, and a batch is whatever arrived while the previous one was in flight.
Each statement is atomic on its own (autocommit), so a batch commits whole or
not at all. The completion's cost rows also reach the ``cost_daily`` rollup in that
statement: a statement-level trigger (migration 0011) upserts the batch's distinct
(day, user, provider, model, intent) keys once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from worker.store.ledger import CALL_COLUMNS, call_row
from worker.store.records import CallRecord, Claim, WorkflowRef
from worker.store.text import pg_json, pg_jsonb

__all__ = ["ClaimAsk", "Completion", "claim_many", "complete_many"]

Conn = psycopg.AsyncConnection[Any]

_CLAIM_MANY = """
WITH asked AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s)
        AS a(id text, type text, user_id text, priority text, trace_id text, parent_id text,
             variant text)
), claimed AS (
    INSERT INTO workflows AS w (id, type, user_id, status, priority, attempts, trace_id,
                                lease_owner, lease_until, parent_id, variant)
    SELECT id, type, user_id, 'running', priority, 1, trace_id,
           %(owner)s, now() + make_interval(secs => %(lease)s), parent_id, variant
      FROM asked
    ON CONFLICT (id) DO UPDATE
       SET status = 'running', attempts = w.attempts + 1, lease_owner = EXCLUDED.lease_owner,
           lease_until = EXCLUDED.lease_until, variant = EXCLUDED.variant, updated_at = now()
     WHERE w.status <> 'completed' AND (w.lease_until IS NULL OR w.lease_until < now())
    RETURNING w.id, w.attempts
)
SELECT a.id, c.attempts AS claimed, w.status, w.attempts,
       GREATEST(0, EXTRACT(EPOCH FROM w.lease_until - now()))::float8 AS left
  FROM asked a
  LEFT JOIN claimed c ON c.id = a.id
  LEFT JOIN workflows w ON w.id = a.id
"""

_COMPLETE_MANY = f"""
WITH finished AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s) AS f(id text, result jsonb, provider text)
), done AS (
    UPDATE workflows w
       SET status = 'completed', result = f.result, provider = f.provider,
           error_code = NULL, error_message = NULL, lease_owner = NULL, lease_until = NULL,
           completed_at = now(), updated_at = now()
      FROM finished f
     WHERE w.id = f.id AND w.status <> 'completed'
    RETURNING w.id
), costs AS (
    INSERT INTO llm_calls (workflow_id, user_id, intent_type, provider, model, prompt_tokens,
                           completion_tokens, usage_source, cost_usd, price_version, duration_ms,
                           attempt, receive_count, cache_hit, outcome, error_code, trace_id,
                           variant, repair)
    SELECT workflow_id, user_id, intent_type, provider, model, prompt_tokens,
           completion_tokens, usage_source, cost_usd, price_version, duration_ms,
           attempt, receive_count, cache_hit, outcome, error_code, trace_id,
           variant, coalesce(repair, false)
      FROM jsonb_to_recordset(%(calls)s) AS c({CALL_COLUMNS})
    RETURNING 1
)
SELECT id FROM done
"""


@dataclass(frozen=True, slots=True)
class ClaimAsk:
    ref: WorkflowRef
    owner: str
    lease_seconds: float


@dataclass(frozen=True, slots=True)
class Completion:
    ref: WorkflowRef
    result: dict[str, Any]
    provider: str | None
    calls: Sequence[CallRecord]
    receive_count: int


async def claim_many(conn: Conn, asks: Sequence[ClaimAsk]) -> list[Claim]:
    """Take the leases of ``asks`` (one owner and lease length) in one statement."""
    first: dict[str, int] = {}
    for i, ask in enumerate(asks):
        first.setdefault(ask.ref.id, i)
    rows = [
        {
            "id": a.ref.id,
            "type": a.ref.type,
            "user_id": a.ref.user_id,
            "priority": a.ref.priority,
            "trace_id": a.ref.trace_id,
            "parent_id": a.ref.parent_id,
            "variant": a.ref.variant,
        }
        for i, a in enumerate(asks)
        if first[a.ref.id] == i
    ]
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _CLAIM_MANY,
            {
                "rows": pg_jsonb(rows),
                "owner": asks[0].owner,
                "lease": asks[0].lease_seconds,
            },
        )
        found = {row["id"]: row for row in await cur.fetchall()}
    claims: list[Claim] = []
    for i, ask in enumerate(asks):
        if first[ask.ref.id] != i:  # the same workflow twice in a batch: as the first one saw it
            seen = claims[first[ask.ref.id]]
            mine = seen.outcome == "claimed"
            claims.append(Claim("held", seen.attempts, ask.lease_seconds) if mine else seen)
            continue
        row = found.get(pg_json(ask.ref.id))
        if row is not None and row["claimed"] is not None:
            claims.append(Claim("claimed", attempts=int(row["claimed"])))
        elif row is None or row["status"] is None:  # appeared concurrently: SQS brings it back
            claims.append(Claim("held", seconds_left=1.0))
        elif row["status"] == "completed":
            claims.append(Claim("completed", attempts=int(row["attempts"])))
        else:
            claims.append(
                Claim("held", attempts=int(row["attempts"]), seconds_left=float(row["left"] or 0))
            )
    return claims


async def complete_many(conn: Conn, done: Sequence[Completion]) -> list[bool]:
    """Results, statuses and cost rows of ``done`` in one statement; per entry,
    whether this completed it (False: it was completed already)."""
    rows = [{"id": d.ref.id, "result": d.result, "provider": d.provider} for d in done]
    calls = [call_row(d.ref, c, d.receive_count) for d in done for c in d.calls]
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _COMPLETE_MANY, {"rows": pg_jsonb(rows), "calls": pg_jsonb(calls)}
        )
        now_done = {row["id"] for row in await cur.fetchall()}
    flags: list[bool] = []
    for d in done:
        key = pg_json(d.ref.id)
        flags.append(key in now_done)
        now_done.discard(key)  # a duplicate in the batch did not complete it a second time
    return flags
