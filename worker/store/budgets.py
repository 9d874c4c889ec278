"""Budgets (``fleet budgets``), their use per period, and the alerts fired.

A budget row says how much a scope may spend per period; ``budget_usage`` holds, per
budget and period start (a date in FLEET_BUDGET_TIMEZONE), what was spent and what
worker processes hold leased. ``lease`` grants allowance only while
``spent + leased`` stays within the amount, one row update per chunk (never per
call); ``settle`` moves settled cost from leased to spent and gives unused lease back.
``mark_alert`` is the fleet-wide once-per-period guard of a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from worker.store.pool import Connects, Row

__all__ = ["Budget", "BudgetTable", "BudgetUse", "Grant", "Scope"]

Scope = Literal["global", "user", "intent", "model"]
_COLUMNS = "id, scope, subject, period, amount_usd, action, thresholds, updated_at"

_UPSERT = f"""
INSERT INTO budgets (scope, subject, period, amount_usd, action, thresholds)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (scope, subject, period) DO UPDATE
   SET amount_usd = EXCLUDED.amount_usd, action = EXCLUDED.action,
       thresholds = EXCLUDED.thresholds, updated_at = now()
RETURNING {_COLUMNS}
"""

_USAGE_ROW = """
INSERT INTO budget_usage (budget_id, period_start)
SELECT id, %(period)s FROM budgets WHERE id = %(id)s
ON CONFLICT DO NOTHING
"""

_LOCK_USAGE = """
SELECT u.spent_usd, u.leased_usd, b.amount_usd
  FROM budget_usage u JOIN budgets b ON b.id = u.budget_id
 WHERE u.budget_id = %s AND u.period_start = %s
   FOR UPDATE OF u
"""

_TAKE = """
UPDATE budget_usage SET leased_usd = leased_usd + %s, refused = refused + %s, updated_at = now()
 WHERE budget_id = %s AND period_start = %s
"""

_SETTLE = """
UPDATE budget_usage u
   SET spent_usd = u.spent_usd + %(spent)s,
       leased_usd = GREATEST(u.leased_usd - %(release)s, 0),
       refused = u.refused + %(refused)s, updated_at = now()
  FROM budgets b
 WHERE b.id = u.budget_id AND u.budget_id = %(id)s AND u.period_start = %(period)s
RETURNING u.spent_usd, b.amount_usd
"""

_MARK_ALERT = """
INSERT INTO budget_alerts (budget_id, period_start, threshold, spent_usd)
VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING threshold
"""

_USE = f"""
SELECT {", ".join("b." + c for c in _COLUMNS.split(", "))},
       coalesce(u.spent_usd, 0) AS spent_usd, coalesce(u.leased_usd, 0) AS leased_usd,
       coalesce(u.refused, 0) AS refused,
       CASE b.period WHEN 'day' THEN %(day)s::date ELSE %(month)s::date END AS period_start,
       ARRAY(SELECT a.threshold FROM budget_alerts a WHERE a.budget_id = b.id
              AND a.period_start = CASE b.period WHEN 'day' THEN %(day)s::date
                                                  ELSE %(month)s::date END
              ORDER BY 1) AS fired
  FROM budgets b
  LEFT JOIN budget_usage u ON u.budget_id = b.id
   AND u.period_start = CASE b.period WHEN 'day' THEN %(day)s::date ELSE %(month)s::date END
 ORDER BY b.scope, b.subject, b.period
"""


@dataclass(frozen=True, slots=True)
class Budget:
    id: int
    scope: Scope
    subject: str
    period: Literal["day", "month"]
    amount_usd: Decimal
    action: Literal["hold", "dead_letter", "alert"]
    thresholds: tuple[int, ...]

    @property
    def target(self) -> str:
        """``global``, ``user:u-42``, ``intent:message_generation``, ``model:openai:gpt-4o``."""
        return self.scope if self.scope == "global" else f"{self.scope}:{self.subject}"

    @property
    def enforced(self) -> bool:
        return self.action != "alert"


@dataclass(frozen=True, slots=True)
class BudgetUse:
    """A budget and its current period: spent, leased in flight, refusals, alerts fired."""

    budget: Budget
    period_start: date
    spent_usd: Decimal
    leased_usd: Decimal
    refused: int
    fired: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Grant:
    """What ``lease`` gave (0 when refused) and the row as it stood."""

    granted: Decimal
    spent_usd: Decimal
    leased_usd: Decimal
    amount_usd: Decimal


def _budget(row: Row) -> Budget:
    return Budget(
        id=int(row["id"]),
        scope=row["scope"],
        subject=row["subject"],
        period=row["period"],
        amount_usd=Decimal(row["amount_usd"]),
        action=row["action"],
        thresholds=tuple(int(t) for t in row["thresholds"]),
    )


class BudgetTable:
    def __init__(self, db: Connects) -> None:
        self._db = db

    # --- managed by `fleet budgets` ------------------------------------------
    async def all(self) -> list[Budget]:
        async with self._db.connection() as conn:
            cur = await conn.execute(f"SELECT {_COLUMNS} FROM budgets ORDER BY id")
            return [_budget(row) for row in await cur.fetchall()]

    async def put(
        self,
        scope: Scope,
        subject: str,
        period: str,
        amount: Decimal,
        action: str,
        thresholds: Sequence[int],
    ) -> Budget:
        """Create the budget, or change the one with the same scope, subject and period
        (its use this period is kept)."""
        async with self._db.connection() as conn:
            cur = await conn.execute(
                _UPSERT, (scope, subject, period, amount, action, list(thresholds))
            )
            row = await cur.fetchone()
        assert row is not None  # an upsert always returns its row
        return _budget(row)

    async def delete(self, budget_id: int) -> bool:
        async with self._db.connection() as conn:
            cur = await conn.execute("DELETE FROM budgets WHERE id = %s", (budget_id,))
            return cur.rowcount > 0

    async def use(self, day: date, month: date) -> list[BudgetUse]:
        """Every budget with its current period (``day`` or ``month`` start)."""
        async with self._db.connection() as conn:
            cur = await conn.execute(_USE, {"day": day, "month": month})
            rows = await cur.fetchall()
        return [
            BudgetUse(
                budget=_budget(row),
                period_start=row["period_start"],
                spent_usd=Decimal(row["spent_usd"]),
                leased_usd=Decimal(row["leased_usd"]),
                refused=int(row["refused"]),
                fired=tuple(int(t) for t in row["fired"]),
            )
            for row in rows
        ]

    # --- the workers' ledger -------------------------------------------------
    async def lease(
        self, budget_id: int, period: date, want: Decimal, need: Decimal, enforce: bool
    ) -> Grant:
        """Take up to ``want`` (at least ``need``, else nothing) of the period's free
        allowance; without ``enforce``, ``need`` is granted whatever is left."""
        async with self._db.connection() as conn, conn.transaction():
            await conn.execute(_USAGE_ROW, {"id": budget_id, "period": period})
            cur = await conn.execute(_LOCK_USAGE, (budget_id, period))
            row = await cur.fetchone()
            if row is None:  # the budget was deleted: nothing to hold to
                return Grant(need, Decimal(0), Decimal(0), Decimal(0))
            spent, leased, amount = (
                Decimal(row[k]) for k in ("spent_usd", "leased_usd", "amount_usd")
            )
            free = amount - spent - leased
            granted = min(want, free) if enforce else max(need, min(want, free))
            if granted < need:
                granted = Decimal(0)
            await conn.execute(_TAKE, (granted, 0 if granted else 1, budget_id, period))
        return Grant(granted, spent, leased + granted, amount)

    async def settle(
        self, budget_id: int, period: date, spent: Decimal, release: Decimal, refused: int = 0
    ) -> tuple[Decimal, Decimal] | None:
        """Add ``spent`` to the period's spend, take ``release`` off its leases and count
        ``refused`` refusals; (spent now, amount), or None when the budget is gone."""
        params = {
            "id": budget_id,
            "period": period,
            "spent": spent,
            "release": release,
            "refused": refused,
        }
        async with self._db.connection() as conn:
            await conn.execute(_USAGE_ROW, params)
            row = await (await conn.execute(_SETTLE, params)).fetchone()
        return None if row is None else (Decimal(row["spent_usd"]), Decimal(row["amount_usd"]))

    async def mark_alert(
        self, budget_id: int, period: date, threshold: int, spent: Decimal
    ) -> bool:
        """True for the one process, fleet-wide, that marks this threshold first."""
        async with self._db.connection() as conn:
            cur = await conn.execute(_MARK_ALERT, (budget_id, period, threshold, spent))
            return await cur.fetchone() is not None
