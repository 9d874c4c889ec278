"""`fleet costs`: the cost read model shaped for printing and JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from worker.ops.budgets import budget_uses, use_row
from worker.ops.shape import by_camel, usd
from worker.store import Store
from worker.store.reads import COST_GROUPS, cost_breakdown, cost_totals, variant_breakdown

__all__ = ["GROUPS", "cost_report"]

GROUPS = tuple(COST_GROUPS)
VARIANT = "variant"  # --by variant: the A/B table (cost, latency, failure and repair rates)


async def cost_report(
    store: Store,
    since: datetime,
    by: list[str] | None = None,
    limit: int = 50,
    user: str | None = None,
    zone: str = "UTC",
) -> dict[str, Any]:
    """Totals since ``since``, tables grouped by each of ``by`` (or one table by all), and
    every budget's current period (in time zone ``zone``; with ``user``, that user's
    budgets only); money as decimal strings.
    ``variant`` in ``by`` adds the A/B table (``variants``) instead of a group."""
    total = await cost_totals(store, since, user)
    plain = [name for name in by or () if name != VARIANT]
    tables = {name: [name] for name in GROUPS} if not by else {"+".join(plain): plain}
    groups: dict[str, list[dict[str, Any]]] = {}
    for title, names in tables.items():
        if not names:
            continue
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
        "budgets": [
            use_row(use)
            for use in await budget_uses(store, zone)
            if user is None or (use.budget.scope, use.budget.subject) == ("user", user)
        ],
        **({"variants": await _variants(store, since, user)} if VARIANT in (by or ()) else {}),
    }


async def _variants(store: Store, since: datetime, user: str | None) -> list[dict[str, Any]]:
    rows = await variant_breakdown(store, since, user)
    return [{k: _number(k, v) for k, v in by_camel(row).items()} for row in rows]


def _number(key: str, value: Any) -> Any:
    """Latencies as whole milliseconds, rates as plain numbers (0.0125 = 1.25 %)."""
    if value is None or not (key.endswith("Ms") or key.endswith("Rate")):
        return value
    return round(float(value)) if key.endswith("Ms") else float(value)
