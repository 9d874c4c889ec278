"""`fleet status`: workflows by status, cost since a time, and one workflow in detail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from worker.store.pool import Connects, Row

__all__ = ["WorkflowDetail", "cost_since", "workflow_counts", "workflow_detail"]

_COUNTS = "SELECT status, count(*) AS n FROM workflows GROUP BY status"

_COST_SINCE = """
SELECT provider, intent_type, count(*) AS calls, sum(prompt_tokens) AS prompt_tokens,
       sum(completion_tokens) AS completion_tokens, sum(cost_usd) AS cost_usd
  FROM llm_calls WHERE created_at >= %s
 GROUP BY provider, intent_type ORDER BY provider, intent_type
"""

_CHUNKS = """
SELECT status, count(*) AS n FROM workflows
 WHERE parent_id = %s AND type = 'campaign_batch' GROUP BY status
"""

_SENDS = """
SELECT status, count(*) AS n FROM onlyfans_sends
 WHERE campaign_id = %(id)s OR (campaign_id IS NULL AND workflow_id = %(id)s) GROUP BY status
"""

_COST_OF = """
SELECT count(*) AS calls, coalesce(sum(cost_usd), 0) AS usd FROM llm_calls
 WHERE workflow_id = %(id)s OR workflow_id IN (SELECT id FROM workflows WHERE parent_id = %(id)s)
"""


@dataclass(frozen=True, slots=True)
class WorkflowDetail:
    """A workflow row with what hangs off it: campaign chunks, sends, LLM cost."""

    row: Row
    chunks: dict[str, int]  # campaign_batch children by status
    sends: dict[str, int]  # onlyfans_sends by status
    llm_calls: int
    cost_usd: Decimal


def _by_status(rows: list[Row]) -> dict[str, int]:
    return {str(r["status"]): int(r["n"]) for r in rows}


async def workflow_counts(db: Connects) -> dict[str, int]:
    """Every workflow, counted by status."""
    async with db.connection() as conn:
        return _by_status(await (await conn.execute(_COUNTS)).fetchall())


async def cost_since(db: Connects, since: datetime) -> list[Row]:
    """LLM calls, tokens and cost since ``since``, by provider and intent type."""
    async with db.connection() as conn:
        return await (await conn.execute(_COST_SINCE, (since,))).fetchall()


async def workflow_detail(db: Connects, workflow_id: str) -> WorkflowDetail | None:
    async with db.connection() as conn:
        cur = await conn.execute("SELECT * FROM workflows WHERE id = %s", (workflow_id,))
        row = await cur.fetchone()
        if row is None:
            return None
        chunks = await (await conn.execute(_CHUNKS, (workflow_id,))).fetchall()
        sends = await (await conn.execute(_SENDS, {"id": workflow_id})).fetchall()
        cost = await (await conn.execute(_COST_OF, {"id": workflow_id})).fetchone()
    assert cost is not None  # an aggregate always answers
    return WorkflowDetail(
        row, _by_status(chunks), _by_status(sends), int(cost["calls"]), Decimal(cost["usd"])
    )
