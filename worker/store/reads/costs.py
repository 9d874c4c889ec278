"""Cost windows: the llm_calls ledger totalled and grouped, for `fleet costs` and the
console's costs page.

A window reads whole UTC days from the ``cost_daily`` rollup (migration 0011, kept
exact by triggers on llm_calls) and only its ragged edges, the part of the first day
after ``since`` and of the last day before ``until``, from llm_calls itself. A 30-day
window over a million cost rows is then an index-only scan of the rollup plus at most
two days of rows, and equals the sum of llm_calls to the last digit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, LiteralString

from psycopg import sql

from worker.store.pool import Connects, Row

__all__ = [
    "COST_COLUMNS",
    "COST_GROUPS",
    "CostTotals",
    "cost_breakdown",
    "cost_page",
    "cost_per_day",
    "cost_totals",
    "window_params",
]

# names a caller may group by -> columns of the window's rows (never user text in SQL)
COST_COLUMNS: dict[str, LiteralString] = {
    "user": "user_id",
    "provider": "provider",
    "intent": "intent_type",
    "model": "model",
    "day": "day",
}
# the tables `fleet costs` prints by default
COST_GROUPS = {name: COST_COLUMNS[name] for name in ("user", "provider", "intent", "day")}

_FAR_DAY = date(9999, 1, 1)

# {user} is empty or an extra condition on user_id; the three branches never overlap
_SOURCE = """(
SELECT day, user_id, provider, model, intent_type, calls, cache_hits, prompt_tokens,
       completion_tokens, cost_usd
  FROM cost_daily WHERE day >= %(first_day)s AND day < %(end_day)s {user}
UNION ALL
SELECT (created_at AT TIME ZONE 'UTC')::date, user_id, provider, model, intent_type, 1,
       cache_hit::int, prompt_tokens, completion_tokens, cost_usd
  FROM llm_calls WHERE created_at >= %(since)s AND created_at < %(first_at)s {user}
UNION ALL
SELECT (created_at AT TIME ZONE 'UTC')::date, user_id, provider, model, intent_type, 1,
       cache_hit::int, prompt_tokens, completion_tokens, cost_usd
  FROM llm_calls WHERE created_at >= %(end_at)s AND created_at < %(until)s {user}
) AS w"""

_TOTALS = """
SELECT coalesce(sum(calls), 0)::bigint AS calls, coalesce(sum(cost_usd), 0) AS usd,
       coalesce(sum(cache_hits), 0)::bigint AS hits FROM {source}
"""

_PER_DAY = """
SELECT day, sum(calls)::bigint AS calls,
       sum(prompt_tokens + completion_tokens)::bigint AS tokens, sum(cost_usd) AS usd
  FROM {source} GROUP BY day ORDER BY day
"""

# the costs page: the days (chart, totals) and the top groups in one scan of the window
_PAGE = """
WITH g AS MATERIALIZED (
    SELECT GROUPING(day) = 1 AS grouped, day, {column} AS key, sum(calls)::bigint AS calls,
           sum(prompt_tokens + completion_tokens)::bigint AS tokens, sum(cost_usd) AS usd
      FROM {source} GROUP BY GROUPING SETS ((day), ({column}))
)
SELECT grouped, day, key, calls, tokens, usd FROM g WHERE NOT grouped
UNION ALL
(SELECT grouped, day, key, calls, tokens, usd FROM g WHERE grouped
  ORDER BY usd DESC NULLS LAST, key LIMIT %(limit)s)
"""

_BREAKDOWN = """
SELECT {columns}, sum(calls)::bigint AS calls,
       sum(prompt_tokens + completion_tokens)::bigint AS tokens, sum(cost_usd) AS usd
  FROM {source}
 GROUP BY {positions} ORDER BY usd DESC NULLS LAST, 1 LIMIT %(limit)s
"""


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def window_params(since: datetime, until: datetime | None = None) -> dict[str, Any]:
    """The bounds of ``[since, until)`` split into whole UTC days (from the rollup) and
    the ragged edges before and after them (from llm_calls)."""
    since = since.astimezone(UTC)
    first_day = since.date() + timedelta(days=0 if since == _midnight(since.date()) else 1)
    end = _midnight(_FAR_DAY) if until is None else until.astimezone(UTC)
    end_day = end.date()
    if end_day <= first_day:  # no whole day inside: every row comes from llm_calls
        first_at = end_at = end
    else:
        first_at, end_at = _midnight(first_day), _midnight(end_day)
    return {
        "first_day": first_day,
        "end_day": end_day,
        "since": since,
        "first_at": first_at,
        "end_at": end_at,
        "until": end,
    }


def _source(user: str | None) -> sql.Composable:
    condition = sql.SQL("AND user_id = %(user)s" if user is not None else "")
    return sql.SQL(_SOURCE).format(user=condition)


@dataclass(frozen=True, slots=True)
class CostTotals:
    calls: int
    cache_hits: int
    usd: Decimal


async def cost_totals(
    db: Connects, since: datetime, user: str | None = None, until: datetime | None = None
) -> CostTotals:
    """Calls, cache hits and cost in ``[since, until)`` (one creator's, when ``user``)."""
    query = sql.SQL(_TOTALS).format(source=_source(user))
    async with db.connection() as conn:
        cur = await conn.execute(query, window_params(since, until) | {"user": user})
        row = await cur.fetchone()
    assert row is not None  # an aggregate always answers
    return CostTotals(int(row["calls"]), int(row["hits"]), Decimal(row["usd"]))


async def cost_per_day(
    db: Connects, since: datetime, until: datetime | None = None, user: str | None = None
) -> list[Row]:
    """Calls, tokens and USD per UTC day of ``[since, until)``, oldest first."""
    query = sql.SQL(_PER_DAY).format(source=_source(user))
    async with db.connection() as conn:
        cur = await conn.execute(query, window_params(since, until) | {"user": user})
        return await cur.fetchall()


async def cost_page(
    db: Connects, by: str, since: datetime, until: datetime | None = None, limit: int = 100
) -> tuple[list[Row], list[Row]]:
    """Per day of ``[since, until)`` (oldest first) and the costliest ``limit`` groups by
    ``by`` (each row: ``by``'s name, calls, tokens, usd), from one scan of the window."""
    if by not in COST_COLUMNS:
        raise ValueError(f"group by one of {sorted(COST_COLUMNS)}, not {by!r}")
    if by == "day":
        days = await cost_per_day(db, since, until)
        top = sorted(days, key=lambda d: (-d["usd"], d["day"]))[:limit]
        return days, [{"day": d["day"], **{k: d[k] for k in ("calls", "tokens", "usd")}}
                      for d in top]
    column = sql.Identifier(COST_COLUMNS[by])
    query = sql.SQL(_PAGE).format(column=column, source=_source(None))
    async with db.connection() as conn:
        cur = await conn.execute(query, window_params(since, until) | {"limit": limit})
        found = await cur.fetchall()
    measures = ("calls", "tokens", "usd")
    days = sorted(
        ({"day": r["day"], **{k: r[k] for k in measures}} for r in found if not r["grouped"]),
        key=lambda d: d["day"],
    )
    top = [{by: r["key"], **{k: r[k] for k in measures}} for r in found if r["grouped"]]
    return days, top


async def cost_breakdown(
    db: Connects,
    since: datetime,
    by: Sequence[str],
    *,
    user: str | None = None,
    until: datetime | None = None,
    limit: int = 50,
) -> list[Row]:
    """The costliest groups by ``by`` (names of ``COST_COLUMNS``): each row holds those
    names, then calls, tokens and usd."""
    unknown = [name for name in by if name not in COST_COLUMNS]
    if unknown or not by:
        raise ValueError(f"group by one or more of {sorted(COST_COLUMNS)}, not {list(by)}")
    query = sql.SQL(_BREAKDOWN).format(
        columns=sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(sql.Identifier(COST_COLUMNS[name]), sql.Identifier(name))
            for name in by
        ),
        positions=sql.SQL(", ").join(sql.Literal(i + 1) for i in range(len(by))),
        source=_source(user),
    )
    params = window_params(since, until) | {"user": user, "limit": limit}
    async with db.connection() as conn:
        return await (await conn.execute(query, params)).fetchall()
