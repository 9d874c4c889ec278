"""Cost windows: the llm_calls ledger totalled and grouped, for `fleet costs` and the
console's costs page.

A window reads its whole UTC days from rollups kept exact by triggers on llm_calls
(migrations 0011 and 0016) and only its ragged edges, the part of the first day after
``since`` and of the last day before ``until``, from llm_calls itself. Which rollup
depends on what is asked: ``cost_day_mix`` (per day, provider, model and intent, no
user) when no user is grouped or filtered; by user, ``cost_monthly`` for the window's
whole months and ``cost_daily`` for the days around them unless the answer is per day,
else ``cost_daily``. A 90-day window over a million cost rows is then a few thousand
rollup rows plus at most two days of llm_calls, and equals the sum of llm_calls to the
last digit.
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

_MEASURES = "calls, cache_hits, prompt_tokens, completion_tokens, cost_usd"
# the whole days of the window, by user ({user} is empty or a condition on user_id)
_DAILY = f"""
SELECT day, user_id, provider, model, intent_type, {_MEASURES}
  FROM cost_daily WHERE day >= %(first_day)s AND day < %(end_day)s {{user}}"""
# the same days without the user (the day column is right: per-day reads may use it)
_MIX = f"""
SELECT day, NULL::text, provider, model, intent_type, {_MEASURES}
  FROM cost_day_mix WHERE day >= %(first_day)s AND day < %(end_day)s"""
# the same days by user, whole months from cost_monthly (its day is the month's first:
# never read per day), the days before and after them from cost_daily
_MONTHLY = f"""
SELECT month, user_id, provider, model, intent_type, {_MEASURES}
  FROM cost_monthly WHERE month >= %(first_month)s AND month < %(end_month)s {{user}}
UNION ALL
SELECT day, user_id, provider, model, intent_type, {_MEASURES}
  FROM cost_daily WHERE day >= %(first_day)s AND day < %(first_month)s {{user}}
UNION ALL
SELECT day, user_id, provider, model, intent_type, {_MEASURES}
  FROM cost_daily WHERE day >= %(end_month)s AND day < %(end_day)s {{user}}"""

# the whole days (one of the above), then the ragged edges; the branches never overlap
_SOURCE = """(
{rolled}
UNION ALL
SELECT (created_at AT TIME ZONE 'UTC')::date, user_id, provider, model, intent_type, 1,
       cache_hit::int, prompt_tokens, completion_tokens, cost_usd
  FROM llm_calls WHERE created_at >= %(since)s AND created_at < %(first_at)s {user}
UNION ALL
SELECT (created_at AT TIME ZONE 'UTC')::date, user_id, provider, model, intent_type, 1,
       cache_hit::int, prompt_tokens, completion_tokens, cost_usd
  FROM llm_calls WHERE created_at >= %(end_at)s AND created_at < %(until)s {user}
) AS w (day, user_id, provider, model, intent_type, calls, cache_hits, prompt_tokens,
        completion_tokens, cost_usd)"""

_TOTALS = """
SELECT coalesce(sum(calls), 0)::bigint AS calls, coalesce(sum(cost_usd), 0) AS usd,
       coalesce(sum(cache_hits), 0)::bigint AS hits FROM {source}
"""

_PER_DAY = """
SELECT day, sum(calls)::bigint AS calls,
       sum(prompt_tokens + completion_tokens)::bigint AS tokens, sum(cost_usd) AS usd
  FROM {source} GROUP BY day ORDER BY day
"""

_BREAKDOWN = """
SELECT {columns}, sum(calls)::bigint AS calls,
       sum(prompt_tokens + completion_tokens)::bigint AS tokens, sum(cost_usd) AS usd
  FROM {source}
 GROUP BY {positions} ORDER BY usd DESC NULLS LAST, 1 LIMIT %(limit)s
"""


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _next_month(day: date) -> date:
    return day if day.day == 1 else (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def window_params(since: datetime, until: datetime | None = None) -> dict[str, Any]:
    """The bounds of ``[since, until)`` split into whole UTC months and days (from the
    rollups) and the ragged edges before and after them (from llm_calls)."""
    since = since.astimezone(UTC)
    first_day = since.date() + timedelta(days=0 if since == _midnight(since.date()) else 1)
    end = _midnight(_FAR_DAY) if until is None else until.astimezone(UTC)
    end_day = end.date()
    if end_day <= first_day:  # no whole day inside: every row comes from llm_calls
        first_at = end_at = end
    else:
        first_at, end_at = _midnight(first_day), _midnight(end_day)
    first_month, end_month = _next_month(first_day), end_day.replace(day=1)
    if end_month <= first_month:  # no whole month inside: every whole day from cost_daily
        first_month = end_month = max(first_day, end_day)
    return {
        "first_day": first_day,
        "end_day": end_day,
        "first_month": first_month,
        "end_month": end_month,
        "since": since,
        "first_at": first_at,
        "end_at": end_at,
        "until": end,
    }


def _source(by: Sequence[str], user: str | None) -> sql.Composable:
    """The window's rows for grouping by ``by``: whole days without the user when no
    user is asked for, whole months by user when no day is, else whole days by user."""
    condition = sql.SQL("AND user_id = %(user)s" if user is not None else "")
    if user is None and "user" not in by:
        rolled = _MIX
    elif "day" not in by:
        rolled = _MONTHLY
    else:
        rolled = _DAILY
    return sql.SQL(_SOURCE).format(
        rolled=sql.SQL(rolled).format(user=condition), user=condition
    )


@dataclass(frozen=True, slots=True)
class CostTotals:
    calls: int
    cache_hits: int
    usd: Decimal


async def cost_totals(
    db: Connects, since: datetime, user: str | None = None, until: datetime | None = None
) -> CostTotals:
    """Calls, cache hits and cost in ``[since, until)`` (one creator's, when ``user``)."""
    query = sql.SQL(_TOTALS).format(source=_source((), user))
    async with db.connection() as conn:
        cur = await conn.execute(query, window_params(since, until) | {"user": user})
        row = await cur.fetchone()
    assert row is not None  # an aggregate always answers
    return CostTotals(int(row["calls"]), int(row["hits"]), Decimal(row["usd"]))


async def cost_per_day(
    db: Connects, since: datetime, until: datetime | None = None, user: str | None = None
) -> list[Row]:
    """Calls, tokens and USD per UTC day of ``[since, until)``, oldest first."""
    query = sql.SQL(_PER_DAY).format(source=_source(("day",), user))
    async with db.connection() as conn:
        cur = await conn.execute(query, window_params(since, until) | {"user": user})
        return await cur.fetchall()


async def cost_page(
    db: Connects, by: str, since: datetime, until: datetime | None = None, limit: int = 100
) -> tuple[list[Row], list[Row]]:
    """Per day of ``[since, until)`` (oldest first) and the costliest ``limit`` groups by
    ``by`` (each row: ``by``'s name, calls, tokens, usd). The days come from the rollup
    without users, the groups by user from whole months: neither reads a row per user
    and day of the window."""
    if by not in COST_COLUMNS:
        raise ValueError(f"group by one of {sorted(COST_COLUMNS)}, not {by!r}")
    days = await cost_per_day(db, since, until)
    if by == "day":
        top = sorted(days, key=lambda d: (-d["usd"], d["day"]))[:limit]
        return days, [{"day": d["day"], **{k: d[k] for k in ("calls", "tokens", "usd")}}
                      for d in top]
    return days, await cost_breakdown(db, since, [by], until=until, limit=limit)


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
        source=_source(by, user),
    )
    params = window_params(since, until) | {"user": user, "limit": limit}
    async with db.connection() as conn:
        return await (await conn.execute(query, params)).fetchall()
