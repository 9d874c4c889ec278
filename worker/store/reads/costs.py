"""`fleet costs`: the llm_calls ledger totalled and grouped (indexed per user, provider,
intent and day)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, LiteralString

from psycopg import sql

from worker.store.pool import Connects, Row

__all__ = ["COST_GROUPS", "CostTotals", "cost_breakdown", "cost_totals"]

COST_GROUPS: dict[str, LiteralString] = {
    "user": "user_id",
    "provider": "provider",
    "intent": "intent_type",
    "day": "(created_at AT TIME ZONE 'UTC')::date",
}

_TOTALS = """
SELECT count(*) AS calls, coalesce(sum(cost_usd), 0) AS usd,
       count(*) FILTER (WHERE cache_hit) AS hits
  FROM llm_calls WHERE created_at >= %(since)s AND (%(user)s::text IS NULL OR user_id = %(user)s)
"""

_BREAKDOWN = """
SELECT {columns}, count(*) AS calls, sum(prompt_tokens + completion_tokens) AS tokens,
       sum(cost_usd) AS usd
  FROM llm_calls WHERE created_at >= %(since)s AND (%(user)s::text IS NULL OR user_id = %(user)s)
 GROUP BY {positions} ORDER BY usd DESC NULLS LAST LIMIT %(limit)s
"""


@dataclass(frozen=True, slots=True)
class CostTotals:
    calls: int
    cache_hits: int
    usd: Decimal


async def cost_totals(db: Connects, since: datetime, user: str | None = None) -> CostTotals:
    """Calls, cache hits and cost since ``since`` (one creator's, when ``user`` is given)."""
    async with db.connection() as conn:
        row = await (await conn.execute(_TOTALS, {"since": since, "user": user})).fetchone()
    assert row is not None  # an aggregate always answers
    return CostTotals(int(row["calls"]), int(row["hits"]), Decimal(row["usd"]))


async def cost_breakdown(
    db: Connects,
    since: datetime,
    by: Sequence[str],
    *,
    user: str | None = None,
    limit: int = 50,
) -> list[Row]:
    """The costliest groups by ``by`` (names of ``COST_GROUPS``): each row holds those
    names, then calls, tokens and usd."""
    unknown = [name for name in by if name not in COST_GROUPS]
    if unknown or not by:
        raise ValueError(f"group by one or more of {sorted(COST_GROUPS)}, not {list(by)}")
    query = sql.SQL(_BREAKDOWN).format(
        columns=sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(sql.SQL(COST_GROUPS[name]), sql.Identifier(name))
            for name in by
        ),
        positions=sql.SQL(", ").join(sql.Literal(i + 1) for i in range(len(by))),
    )
    params: dict[str, Any] = {"since": since, "user": user, "limit": limit}
    async with db.connection() as conn:
        return await (await conn.execute(query, params)).fetchall()
