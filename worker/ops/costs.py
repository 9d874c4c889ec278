"""Cost reports from the llm_calls ledger (indexed by user, provider and intent per day)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from worker.store import Store

__all__ = ["GROUPS", "cost_report"]

GROUPS = {
    "user": "user_id",
    "provider": "provider",
    "intent": "intent_type",
    "day": "(created_at AT TIME ZONE 'UTC')::date",
}


async def cost_report(
    store: Store,
    since: datetime,
    by: list[str] | None = None,
    limit: int = 50,
    user: str | None = None,
) -> dict[str, Any]:
    """Totals since ``since`` and tables grouped by each of ``by`` (or one table by all)."""
    where = "created_at >= %s" + (" AND user_id = %s" if user else "")
    params: tuple[Any, ...] = (since, user) if user else (since,)
    total = await store.fetch(
        "SELECT count(*) AS calls, coalesce(sum(cost_usd), 0) AS usd,"
        f" count(*) FILTER (WHERE cache_hit) AS hits FROM llm_calls WHERE {where}",
        params,
    )
    tables = {name: [name] for name in GROUPS} if not by else {"+".join(by): list(by)}
    groups: dict[str, list[dict[str, Any]]] = {}
    for title, names in tables.items():
        columns = ", ".join(f'{GROUPS[n]} AS "{n}"' for n in names)
        positions = ", ".join(str(i + 1) for i in range(len(names)))
        rows = await store.fetch(
            f"SELECT {columns}, count(*) AS calls,"
            " sum(prompt_tokens + completion_tokens) AS tokens, sum(cost_usd) AS usd"
            f" FROM llm_calls WHERE {where} GROUP BY {positions}"
            " ORDER BY usd DESC NULLS LAST LIMIT %s",
            (*params, limit),
        )
        groups[title] = [
            {
                k: (float(v) if isinstance(v, Decimal) else str(v) if k == "day" else v)
                for k, v in row.items()
            }
            for row in rows
        ]
    return {
        "since": since.isoformat(),
        "calls": int(total[0]["calls"]),
        "cacheHits": int(total[0]["hits"]),
        "totalUsd": float(total[0]["usd"]),
        "groups": groups,
    }
