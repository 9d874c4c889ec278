"""`fleet costs` and `fleet top`: what analysts and operators look at."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.table import Table

from worker.commands.common import console, friendly, parse_duration, run_async
from worker.commands.common import settings_from_env as load
from worker.ops.costs import cost_report
from worker.store import Store

__all__ = ["costs", "top"]


@click.command()
@click.option("--since", default="7d", show_default=True, help="How far back (2h, 7d, 30d).")
@click.option(
    "--by",
    type=click.Choice(["user", "provider", "intent", "day"]),
    multiple=True,
    help="Group by these (repeat); default: each on its own table.",
)
@click.option("--user", help="Only this creator's calls.")
@click.option("--json", "as_json", is_flag=True)
@friendly
def costs(since: str, by: tuple[str, ...], user: str | None, as_json: bool) -> None:
    """LLM cost from Postgres by user, provider, intent and day."""
    seconds = parse_duration(since, "--since") or 0
    start = datetime.now(UTC) - timedelta(seconds=seconds)
    settings = load()

    async def go() -> dict[str, Any]:
        async with Store(settings.require_database_url()) as store:
            return await cost_report(store, start, list(by) or None, user=user)

    report = run_async(go())
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    console.print(
        f"[bold]cost since {start:%Y-%m-%d %H:%M} UTC[/]: ${report['totalUsd']:.6f} "
        f"over {report['calls']} calls ({report['cacheHits']} cache hits)"
    )
    for name, rows in report["groups"].items():
        table = Table(title=f"by {name}")
        keys = list(rows[0].keys()) if rows else []
        for key in keys:
            table.add_column(key, justify="right" if key in ("calls", "usd", "tokens") else "left")
        for row in rows:
            table.add_row(*(f"{v:.6f}" if k == "usd" else str(v) for k, v in row.items()))
        console.print(table)


@click.command()
@click.option("--interval", type=float, default=1.0, show_default=True)
@click.option("--once", is_flag=True, help="Print one screen and exit (for scripts).")
@click.option(
    "--metrics-url",
    multiple=True,
    help="Worker /metrics URLs for breaker states (default: local FLEET_HEALTH_PORT).",
)
@friendly
def top(interval: float, once: bool, metrics_url: tuple[str, ...]) -> None:
    """A live dashboard: throughput, in flight, depths, latency, errors, breakers, cost."""
    from worker.ops.live import run_top

    settings = load()
    urls = list(metrics_url) or (
        [f"http://127.0.0.1:{settings.health_port}/metrics"] if settings.health_port else []
    )
    run_async(run_top(settings, console, interval=interval, once=once, metrics_urls=urls))
