"""The DLQ workbench's questions: why did a message leave, what did its workflow try."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from worker.store.pool import Connects, Row

__all__ = ["call_history", "dead_letter_reasons", "dead_letters_since"]

_REASONS = """
SELECT DISTINCT ON (message_id) * FROM dead_letters WHERE message_id = ANY(%s)
 ORDER BY message_id, id DESC
"""

_HISTORY = """
SELECT created_at, provider, model, attempt, receive_count, outcome, error_code, duration_ms,
       cost_usd
  FROM llm_calls WHERE workflow_id = %s ORDER BY id
"""

_SINCE = """
SELECT message_id, workflow_id, intent_type, error_class, error_code, error_message,
       receive_count, created_at
  FROM dead_letters WHERE created_at >= %s ORDER BY id
"""


async def dead_letter_reasons(db: Connects, message_ids: Sequence[str]) -> dict[str, Row]:
    """The latest dead_letters row of each original message id that has one."""
    async with db.connection() as conn:
        rows = await (await conn.execute(_REASONS, (list(message_ids),))).fetchall()
    return {str(r["message_id"]): r for r in rows}


async def call_history(db: Connects, workflow_id: str) -> list[Row]:
    """The workflow's LLM attempts, oldest first."""
    async with db.connection() as conn:
        return await (await conn.execute(_HISTORY, (workflow_id,))).fetchall()


async def dead_letters_since(db: Connects, since: datetime) -> list[Row]:
    async with db.connection() as conn:
        return await (await conn.execute(_SINCE, (since,))).fetchall()
