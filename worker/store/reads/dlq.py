"""The DLQ workbench's questions (why did a message leave, what did its workflow try)
and its audit trail (``replays``: the lineage of every replayed copy)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from worker.store.pool import Connects, Row

__all__ = ["Replay", "call_history", "dead_letter_reasons", "dead_letters_since", "record_replay"]

_REASONS = """
SELECT DISTINCT ON (message_id) * FROM dead_letters WHERE message_id = ANY(%s)
 ORDER BY message_id, id DESC
"""

_HISTORY = """
SELECT created_at, provider, model, attempt, receive_count, outcome, error_code, duration_ms
  FROM llm_calls WHERE workflow_id = %s ORDER BY id
"""

_SINCE = """
SELECT message_id, workflow_id, intent_type, error_class, error_code, error_message,
       receive_count, created_at
  FROM dead_letters WHERE created_at >= %s ORDER BY id
"""

_REPLAY = """
INSERT INTO replays (dlq_message_id, source_message_id, new_message_id, workflow_id,
                     replay_count, mode)
VALUES (%s, %s, %s, %s, %s, %s)
"""


@dataclass(frozen=True, slots=True)
class Replay:
    """One replay: a copy sent back ('copy'), or an SQS move task ('native')."""

    dlq_message_id: str  # the move task's handle for 'native'
    source_message_id: str  # '*' for 'native': the task moves everything
    mode: str
    new_message_id: str | None = None
    workflow_id: str | None = None
    replay_count: int = 1


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


async def record_replay(db: Connects, replay: Replay) -> None:
    async with db.connection() as conn:
        await conn.execute(
            _REPLAY,
            (
                replay.dlq_message_id[:200],
                replay.source_message_id,
                replay.new_message_id,
                replay.workflow_id,
                replay.replay_count,
                replay.mode,
            ),
        )
