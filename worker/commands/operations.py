"""`fleet costs` and `fleet top`: what analysts and operators look at."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.table import Table

from worker.commands.budgets import use_table
from worker.commands.common import (
    console,
    emit_json,
    friendly,
    output_option,
    parse_duration,
    run_async,
)
from worker.commands.common import settings_from_env as load
from worker.ops.costs import cost_report
from worker.store import Store

__all__ = ["costs", "top"]


@click.command()
@click.option("--since", default="7d", show_default=True, help="How far back (2h, 7d, 30d).")
@click.option(
    "--by",
    type=click.Choice(["user", "provider", "intent", "day", "variant"]),
    multiple=True,
    help="Group by these (repeat); default: each on its own table. `variant`: the A/B "
    "table (cost, LLM latency, failure and repair rates per variant).",
)
@click.option("--user", help="Only this creator's calls.")
@output_option(legacy_json=True)
@friendly
def costs(since: str, by: tuple[str, ...], user: str | None, as_json: bool) -> None:
    """LLM cost from Postgres by user, provider, intent and day."""
    seconds = parse_duration(since, "--since") or 0
    start = datetime.now(UTC) - timedelta(seconds=seconds)
    settings = load()

    async def go() -> dict[str, Any]:
        async with Store(settings.require_database_url()) as store:
            zone = settings.budget_timezone
            return await cost_report(store, start, list(by) or None, user=user, zone=zone)

    report = run_async(go())
    if as_json:
        emit_json(report)
        return
    _print_costs(report, start, user, settings.budget_timezone)


def _print_costs(report: dict[str, Any], start: datetime, user: str | None, zone: str) -> None:
    whose = f" by user {user}" if user else ""
    if report["budgets"]:
        console.print(use_table(report["budgets"], zone))
    if not report["calls"]:
        console.print(f"no LLM calls{whose} since {start:%Y-%m-%d %H:%M} UTC: nothing to show")
        return
    console.print(
        f"[bold]cost{whose} since {start:%Y-%m-%d %H:%M} UTC[/]: ${report['totalUsd']} "
        f"over {report['calls']} calls ({report['cacheHits']} cache hits)"
    )
    for name, rows in report["groups"].items():
        if not rows:
            continue
        table = Table(title=f"by {name}")
        for key in rows[0]:
            table.add_column(key, justify="right" if key in ("calls", "usd", "tokens") else "left")
        for row in rows:
            table.add_row(*(str(v) for v in row.values()))
        console.print(table)
    if report.get("variants"):
        table = Table(title="by variant")
        for key in report["variants"][0]:
            table.add_column(key)
        for row in report["variants"]:
            table.add_row(*(str(v) for v in row.values()))
        console.print(table)


@click.command()
@click.option("--interval", type=float, default=1.0, show_default=True)
@click.option("--once", is_flag=True, help="Print one screen and exit (for scripts).")
@click.option(
    "--metrics-url",
    multiple=True,
    help="Worker /metrics URLs for breaker states (default: local FLEET_HEALTH_PORT).",
)
@output_option()
@friendly
def top(interval: float, once: bool, metrics_url: tuple[str, ...], as_json: bool) -> None:
    """A live dashboard: throughput, in flight, depths, latency, errors, breakers, cost.

    `--output json` prints one snapshot (it implies --once).
    """
    from worker.ops.live import run_top, snapshot_once

    settings = load()
    urls = list(metrics_url) or (
        [f"http://127.0.0.1:{settings.health_port}/metrics"] if settings.health_port else []
    )
    if as_json:
        emit_json(run_async(snapshot_once(settings, urls)).as_dict())
        return
    run_async(run_top(settings, console, interval=interval, once=once, metrics_urls=urls))
