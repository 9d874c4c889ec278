"""`fleet costs`: the cost read model shaped for printing and JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from worker.ops.shape import by_camel, usd
from worker.store import Store
from worker.store.reads import COST_GROUPS, cost_breakdown, cost_totals

__all__ = ["GROUPS", "cost_report"]

GROUPS = tuple(COST_GROUPS)


async def cost_report(
    store: Store,
    since: datetime,
    by: list[str] | None = None,
    limit: int = 50,
    user: str | None = None,
) -> dict[str, Any]:
    """Totals since ``since`` and tables grouped by each of ``by`` (or one table by all);
    money as decimal strings."""
    total = await cost_totals(store, since, user)
    tables = {name: [name] for name in GROUPS} if not by else {"+".join(by): list(by)}
    groups: dict[str, list[dict[str, Any]]] = {}
    for title, names in tables.items():
        rows = await cost_breakdown(store, since, names, user=user, limit=limit)
        groups[title] = [
            {k: (str(v) if k == "day" else v) for k, v in by_camel(row).items()} for row in rows
        ]
    return {
        "since": since.isoformat(),
        "calls": total.calls,
        "cacheHits": total.cache_hits,
        "totalUsd": usd(total.usd),
        "groups": groups,
    }
