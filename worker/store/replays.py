"""The DLQ workbench's audit trail (``replays``): the lineage of every replayed copy."""

from __future__ import annotations

from dataclasses import dataclass

from worker.store.pool import Connects

__all__ = ["Replay", "record_replay"]

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
