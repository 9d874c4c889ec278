"""The rows that record what happened: cost rows (llm_calls) and dead letters.

Statements only, run on a connection the caller holds, so that they join the
caller's transaction (a completion, a failure).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from worker.store.pool import Conn
from worker.store.records import CallRecord, DeadLetter, WorkflowRef
from worker.store.text import pg_jsonb, pg_text

__all__ = ["CALL_COLUMNS", "call_row", "insert_calls", "insert_dead_letter", "try_insert_calls"]

# the columns of a cost row as jsonb_to_recordset reads them (``call_row`` builds one)
CALL_COLUMNS = """workflow_id text, user_id text, intent_type text, trace_id text,
    receive_count integer, provider text, model text, prompt_tokens integer,
    completion_tokens integer, usage_source text, cost_usd numeric, price_version text,
    duration_ms integer, attempt integer, cache_hit boolean, outcome text, error_code text,
    variant text, repair boolean"""

# one statement for all of a workflow's calls: the cost_daily trigger (migration 0011)
# then adds them to the rollup in one upsert, not one per call
_INSERT_CALLS = f"""
INSERT INTO llm_calls (workflow_id, user_id, intent_type, provider, model, prompt_tokens,
                       completion_tokens, usage_source, cost_usd, price_version, duration_ms,
                       attempt, receive_count, cache_hit, outcome, error_code, trace_id,
                       variant, repair)
SELECT workflow_id, user_id, intent_type, provider, model, prompt_tokens,
       completion_tokens, usage_source, cost_usd, price_version, duration_ms,
       attempt, receive_count, cache_hit, outcome, error_code, trace_id,
       variant, coalesce(repair, false)
  FROM jsonb_to_recordset(%(calls)s) AS c({CALL_COLUMNS})
"""

_INSERT_DEAD_LETTER = """
INSERT INTO dead_letters (message_id, workflow_id, intent_type, user_id, error_class,
                          error_code, error_message, receive_count, history, source_queue)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


def call_row(ref: WorkflowRef, call: CallRecord, receive_count: int) -> dict[str, Any]:
    """One cost row as a JSON object of ``CALL_COLUMNS``."""
    return {
        "workflow_id": ref.id,
        "user_id": ref.user_id,
        "intent_type": ref.type,
        "trace_id": ref.trace_id,
        "receive_count": receive_count,
        "provider": call.provider,
        "model": call.model,
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "usage_source": call.usage_source,
        "cost_usd": str(call.cost_usd),
        "price_version": call.price_version,
        "duration_ms": call.duration_ms,
        "attempt": call.attempt,
        "cache_hit": call.cache_hit,
        "outcome": call.outcome,
        "error_code": call.error_code,
        "variant": ref.variant,
        "repair": call.repair,
    }


async def insert_calls(
    conn: Conn, ref: WorkflowRef, calls: Sequence[CallRecord], receive_count: int
) -> None:
    if not calls:
        return
    rows = [call_row(ref, c, receive_count) for c in calls]
    await conn.execute(_INSERT_CALLS, {"calls": pg_jsonb(rows)})


async def try_insert_calls(
    conn: Conn, ref: WorkflowRef, calls: Sequence[CallRecord], receive_count: int
) -> bool:
    """Cost rows in a savepoint: False (and the rest of the transaction intact) if the
    database refused them; a lost connection still raises."""
    try:
        async with conn.transaction():
            await insert_calls(conn, ref, calls, receive_count)
    except psycopg.OperationalError:
        raise
    except psycopg.Error:
        return False
    return True


async def insert_dead_letter(conn: Conn, dl: DeadLetter) -> None:
    wf = dl.workflow
    await conn.execute(
        _INSERT_DEAD_LETTER,
        (
            dl.message_id,
            wf.id if wf else None,
            wf.type if wf else None,
            wf.user_id if wf else None,
            dl.error_class,
            dl.error_code,
            pg_text(dl.error_message, 2000),
            dl.receive_count,
            pg_jsonb(dl.history),
            dl.source_queue,
        ),
    )
