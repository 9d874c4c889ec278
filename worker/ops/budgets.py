"""`fleet budgets` and the budget columns of `fleet costs`: targets parsed, budgets and
their current period shaped for printing and JSON (camelCase, money as strings)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from worker.errors import ConfigError
from worker.ops.shape import usd
from worker.spend.periods import period_start
from worker.store import Budget, BudgetTable, BudgetUse, Store
from worker.store.budgets import Scope

__all__ = ["budget_row", "budget_uses", "find_budget", "parse_amount", "parse_target", "use_row"]

_SCOPES: dict[str, Scope] = {"user": "user", "intent": "intent", "model": "model"}


def parse_target(text: str) -> tuple[Scope, str]:
    """``global``, ``user:<userId>``, ``intent:<type>`` or ``model:<provider>:<model>``."""
    if text == "global":
        return "global", ""
    scope, _, subject = text.partition(":")
    if scope not in _SCOPES or not subject:
        raise ConfigError(
            f"budget target {text!r}: want global, user:<userId>, intent:<type> or "
            "model:<provider>:<model>"
        )
    if scope == "model" and ":" not in subject:
        raise ConfigError(f"budget target {text!r}: a model budget is model:<provider>:<model>")
    return _SCOPES[scope], subject


def parse_amount(text: str) -> Decimal:
    try:
        amount = Decimal(text.lstrip("$"))
    except InvalidOperation as exc:
        raise ConfigError(f"amount {text!r} is not a number of dollars") from exc
    if amount < 0 or not amount.is_finite():
        raise ConfigError(f"amount {text!r} must be zero or more dollars")
    return amount


def budget_row(budget: Budget) -> dict[str, Any]:
    return {
        "id": budget.id,
        "target": budget.target,
        "scope": budget.scope,
        "subject": budget.subject,
        "period": budget.period,
        "amountUsd": usd(budget.amount_usd),
        "action": budget.action,
        "thresholds": list(budget.thresholds),
    }


def use_row(use: BudgetUse) -> dict[str, Any]:
    """A budget and its current period: spent, leased in flight, share used, alerts."""
    amount = use.budget.amount_usd
    share = use.spent_usd * 100 / amount if amount else Decimal(0)
    return {
        **budget_row(use.budget),
        "periodStart": use.period_start.isoformat(),
        "spentUsd": usd(use.spent_usd),
        "leasedUsd": usd(use.leased_usd),
        "usedPercent": f"{share:.1f}",
        "refused": use.refused,
        "alertsFired": list(use.fired),
    }


async def budget_uses(store: Store, zone: str, now: datetime | None = None) -> list[BudgetUse]:
    """Every budget with its current period in ``zone``."""
    moment = now or datetime.now(UTC)
    day, month = period_start("day", zone, moment), period_start("month", zone, moment)
    return await BudgetTable(store).use(day, month)


def find_budget(budgets: Sequence[Budget], ref: str, period: str | None) -> Budget:
    """A budget by id, or by target (and period when the target has both)."""
    if ref.isdigit():
        found = [b for b in budgets if b.id == int(ref)]
    else:
        scope, subject = parse_target(ref)
        found = [
            b
            for b in budgets
            if b.scope == scope and b.subject == subject and period in (None, b.period)
        ]
    if not found:
        raise ConfigError(f"no budget {ref}" + (f" per {period}" if period else ""))
    if len(found) > 1:
        raise ConfigError(f"{ref} has a day and a month budget: say which with --period")
    return found[0]
