"""`fleet top`: a terminal dashboard refreshed every second (rich Live).

Throughput, latency, errors and cost come from Postgres (every worker writes
there); depths from SQS; breaker states from the workers' /metrics.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from worker.config import Settings
from worker.errors import WorkerError
from worker.ops.shape import usd
from worker.queue import QueueClient
from worker.store import Store
from worker.store.reads import recent_activity

__all__ = ["Snapshot", "collect_snapshot", "render", "run_top", "snapshot_once"]

_BREAKER = re.compile(r'fleet_breaker_state\{provider="(\w+)"\}\s+([\d.]+)')
_STATES = {0: "closed", 1: "half-open", 2: "open"}
_LIMIT = re.compile(r"^fleet_concurrency_limit\s+([\d.e+]+)$", re.M)
_REASON = re.compile(r'^fleet_concurrency_limit_reason\{reason="(\w+)"\}\s+1', re.M)


@dataclass(slots=True)
class Snapshot:
    queue: dict[str, int] = field(default_factory=dict)
    workers: int = 0
    in_flight: int = 0
    per_second: float = 0.0
    latency: dict[str, float] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    breakers: dict[str, str] = field(default_factory=dict)
    cost_per_minute: Decimal = Decimal(0)
    statuses: dict[str, int] = field(default_factory=dict)
    limits: list[tuple[int, str]] = field(default_factory=list)  # per worker: limit, reason

    def as_dict(self) -> dict[str, Any]:
        """For `fleet top --once -o json`: latency is null when nothing completed."""
        q = self.queue
        return {
            "perSecond": round(self.per_second, 3),
            "inFlight": self.in_flight,
            "workers": self.workers,
            "queue": {
                "visible": q.get("visible", 0),
                "inFlight": q.get("in flight", 0),
                "delayed": q.get("delayed", 0),
                "dlq": q.get("dlq", 0),
            },
            "latencySeconds": self.latency or None,
            "errors": self.errors,
            "breakers": self.breakers,
            "costPerMinuteUsd": usd(self.cost_per_minute),
            "statuses": self.statuses,
            "concurrencyLimits": [{"limit": n, "reason": why} for n, why in self.limits],
        }


async def collect_snapshot(
    queue: QueueClient, store: Store, metrics_urls: list[str], client: aiohttp.ClientSession
) -> Snapshot:
    shot = Snapshot()
    depth, dlq = await queue.total_depth(), await queue.total_depth(dlq=True)
    shot.queue = {
        "visible": depth.visible,
        "in flight": depth.in_flight,
        "delayed": depth.delayed,
        "dlq": dlq.visible,
    }
    activity = await recent_activity(store)
    shot.workers, shot.in_flight = activity.workers, activity.in_flight
    shot.per_second = activity.completed / 60
    shot.latency = activity.latency if activity.completed else {}  # no samples, no zeros
    shot.errors = activity.errors
    shot.statuses = activity.statuses
    shot.cost_per_minute = activity.cost_usd
    for url in metrics_urls:
        try:
            async with client.get(url, timeout=aiohttp.ClientTimeout(total=1.0)) as reply:
                text = await reply.text()
        except (aiohttp.ClientError, TimeoutError):
            continue
        limit, reason = _LIMIT.search(text), _REASON.search(text)
        if limit is not None:
            shot.limits.append((int(float(limit[1])), reason[1] if reason else "?"))
        for provider, value in _BREAKER.findall(text):
            state = _STATES.get(int(float(value)), "?")
            if shot.breakers.get(provider) in (None, "closed"):
                shot.breakers[provider] = state
    return shot


def render(shot: Snapshot, title: str) -> Group:
    head = Table(title=title, show_header=True, expand=False)
    for column in (
        "throughput/s",
        "in flight",
        "workers",
        "visible",
        "in flight (SQS)",
        "delayed",
        "DLQ",
        "cost/min",
    ):
        head.add_column(column, justify="right")
    q = shot.queue
    head.add_row(
        f"{shot.per_second:.2f}",
        str(shot.in_flight),
        str(shot.workers),
        str(q.get("visible", 0)),
        str(q.get("in flight", 0)),
        str(q.get("delayed", 0)),
        str(q.get("dlq", 0)),
        f"${shot.cost_per_minute:.4f}",
    )
    latency = Table(title="latency, last 60 s (claim to done)")
    for column in ("p50", "p95", "p99"):
        latency.add_column(column, justify="right")
    if shot.latency:
        latency.add_row(*(f"{shot.latency[k]:.2f}s" for k in ("p50", "p95", "p99")))
    else:
        latency.add_row("no samples", "-", "-")
    errs = Table(title="errors, last 5 min")
    errs.add_column("category")
    errs.add_column("workflows", justify="right")
    for code, n in list(shot.errors.items())[:8] or [("none", 0)]:
        errs.add_row(code, str(n))
    breakers = Table(title="provider breakers")
    breakers.add_column("provider")
    breakers.add_column("state")
    for provider, state in sorted(shot.breakers.items()) or [("(no /metrics reachable)", "-")]:
        breakers.add_row(provider, state)
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(shot.statuses.items())) or "none"
    limits = ", ".join(f"{n} ({why})" for n, why in shot.limits) or "no /metrics reachable"
    return Group(
        head,
        latency,
        errs,
        breakers,
        f"concurrency limit (last move): {limits}",
        f"workflows, last 5 min: {statuses}",
    )


async def snapshot_once(settings: Settings, metrics_urls: list[str]) -> Snapshot:
    """One snapshot, for scripts (`fleet top --once -o json`)."""
    async with (
        Store(settings.require_database_url()) as store,
        QueueClient.from_settings(settings) as queue,
        aiohttp.ClientSession() as client,
    ):
        return await collect_snapshot(queue, store, metrics_urls, client)


async def run_top(
    settings: Settings,
    console: Console,
    *,
    interval: float = 1.0,
    once: bool = False,
    metrics_urls: list[str] | None = None,
) -> None:
    title = f"fleet top: {settings.queue_name}"
    async with (
        Store(settings.require_database_url()) as store,
        QueueClient.from_settings(settings) as queue,
        aiohttp.ClientSession() as client,
    ):
        shot = await collect_snapshot(queue, store, metrics_urls or [], client)
        if once:
            wide = console if console.is_terminal else Console(width=140)
            wide.print(render(shot, title))
            return
        with Live(render(shot, title), console=console, refresh_per_second=4) as live:
            while True:
                await asyncio.sleep(interval)
                try:
                    shot = await collect_snapshot(queue, store, metrics_urls or [], client)
                except WorkerError as exc:
                    live.console.print(f"[red]{exc}[/]")
                    continue
                live.update(render(shot, title))
