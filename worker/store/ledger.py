"""The rows that record what happened: cost rows (llm_calls) and dead letters.

Statements only, run on a connection the caller holds, so that they join the
caller's transaction (a completion, a failure).
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg.types.json import Jsonb

from worker.store.pool import Conn
from worker.store.records import CallRecord, DeadLetter, WorkflowRef
from worker.store.text import pg_json, pg_text

__all__ = ["insert_calls", "insert_dead_letter", "try_insert_calls"]

_INSERT_CALL = """
INSERT INTO llm_calls (workflow_id, user_id, intent_type, provider, model, prompt_tokens,
                       completion_tokens, usage_source, cost_usd, price_version, duration_ms,
                       attempt, receive_count, cache_hit, outcome, error_code, trace_id,
                       variant, repair)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""

_INSERT_DEAD_LETTER = """
INSERT INTO dead_letters (message_id, workflow_id, intent_type, user_id, error_class,
                          error_code, error_message, receive_count, history, source_queue)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


async def insert_calls(
    conn: Conn, ref: WorkflowRef, calls: Sequence[CallRecord], receive_count: int
) -> None:
    if not calls:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            _INSERT_CALL,
            [
                (
                    ref.id,
                    ref.user_id,
                    ref.type,
                    c.provider,
                    c.model,
                    c.prompt_tokens,
                    c.completion_tokens,
                    c.usage_source,
                    c.cost_usd,
                    c.price_version,
                    c.duration_ms,
                    c.attempt,
                    receive_count,
                    c.cache_hit,
                    c.outcome,
                    c.error_code,
                    ref.trace_id,
                    ref.variant,
                    c.repair,
                )
                for c in calls
            ],
        )


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
            Jsonb(pg_json(dl.history)),
            dl.source_queue,
        ),
    )
