"""`fleet budgets set|list|show|delete`: spend limits per user, intent type, model, or
for the whole fleet, per day or month (docs/operations.md, "Budgets")."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from worker.commands.common import console, emit_json, friendly, output_option, run_async
from worker.commands.common import settings_from_env as load
from worker.errors import ConfigError
from worker.ops.budgets import (
    budget_row,
    budget_uses,
    find_budget,
    parse_amount,
    parse_target,
    use_row,
)
from worker.store import BudgetTable, Store

__all__ = ["budgets"]

PERIOD = click.Choice(["day", "month"])


@click.group()
def budgets() -> None:
    """Spend limits: held (or dead-lettered) before they are passed, alerts on the way."""


@budgets.command("set")
@click.argument("target")
@click.option("--amount", required=True, help="USD per period, e.g. 25 or 0.50.")
@click.option("--period", type=PERIOD, default="day", show_default=True)
@click.option(
    "--action",
    type=click.Choice(["hold", "dead_letter", "alert"]),
    default="hold",
    show_default=True,
    help="Over budget: hold the workflow until the period resets, dead-letter it "
    "(over_budget), or only alert.",
)
@click.option(
    "--thresholds",
    default="50,80,100",
    show_default=True,
    help="Alert at these percents of the amount (once per period each).",
)
@output_option()
@friendly
def set_budget(
    target: str, amount: str, period: str, action: str, thresholds: str, as_json: bool
) -> None:
    """Create or change the budget of TARGET: global, user:<userId>, intent:<type> or
    model:<provider>:<model>. Its spend so far this period is kept."""
    scope, subject = parse_target(target)
    try:
        marks = sorted({int(part) for part in thresholds.split(",") if part.strip()})
    except ValueError as exc:
        raise ConfigError(f"--thresholds {thresholds!r}: want percents like 50,80,100") from exc
    if any(mark <= 0 for mark in marks):
        raise ConfigError("--thresholds: percents above 0")
    settings = load()

    async def go() -> dict[str, Any]:
        async with Store(settings.require_database_url()) as store:
            budget = await BudgetTable(store).put(
                scope, subject, period, parse_amount(amount), action, marks
            )
        return budget_row(budget)

    row = run_async(go())
    if as_json:
        emit_json(row)
        return
    console.print(
        f"budget {row['id']}: {row['target']} ${row['amountUsd']} per {period}, "
        f"action {action}, alerts at {', '.join(map(str, marks))} %"
    )


@budgets.command("list")
@output_option()
@friendly
def list_budgets(as_json: bool) -> None:
    """Every budget with its current period: spent, leased in flight, alerts fired."""
    settings = load()

    async def go() -> list[dict[str, Any]]:
        async with Store(settings.require_database_url()) as store:
            return [use_row(u) for u in await budget_uses(store, settings.budget_timezone)]

    rows = run_async(go())
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print("no budgets: `fleet budgets set global --amount 100` makes one")
        return
    console.print(use_table(rows, settings.budget_timezone))


def use_table(rows: list[dict[str, Any]], zone: str) -> Table:
    table = Table(title=f"budgets (periods in {zone})")
    for name in ("id", "target", "period", "from", "spent", "amount", "used", "action", "alerts"):
        table.add_column(name, justify="right" if name in ("spent", "amount", "used") else "left")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["target"],
            row["period"],
            row["periodStart"],
            f"${row['spentUsd']}",
            f"${row['amountUsd']}",
            f"{row['usedPercent']} %",
            row["action"],
            ",".join(map(str, row["alertsFired"])) or "-",
        )
    return table


@budgets.command("show")
@click.argument("ref")
@click.option("--period", type=PERIOD, help="When REF has both a day and a month budget.")
@output_option()
@friendly
def show_budget(ref: str, period: str | None, as_json: bool) -> None:
    """One budget (by id or target) and its current period."""
    settings = load()

    async def go() -> dict[str, Any]:
        async with Store(settings.require_database_url()) as store:
            uses = await budget_uses(store, settings.budget_timezone)
        budget = find_budget([u.budget for u in uses], ref, period)
        return use_row(next(u for u in uses if u.budget.id == budget.id))

    row = run_async(go())
    if as_json:
        emit_json(row)
        return
    for key, value in row.items():
        console.print(f"{key}: {value}")


@budgets.command("delete")
@click.argument("ref")
@click.option("--period", type=PERIOD, help="When REF has both a day and a month budget.")
@output_option()
@friendly
def delete_budget(ref: str, period: str | None, as_json: bool) -> None:
    """Delete a budget (by id or target); workers stop applying it within
    FLEET_BUDGET_REFRESH_SECONDS."""
    settings = load()

    async def go() -> dict[str, Any]:
        async with Store(settings.require_database_url()) as store:
            table = BudgetTable(store)
            budget = find_budget(await table.all(), ref, period)
            await table.delete(budget.id)
        return {**budget_row(budget), "deleted": True}

    row = run_async(go())
    if as_json:
        emit_json(row)
        return
    console.print(f"deleted budget {row['id']}: {row['target']} per {row['period']}")
