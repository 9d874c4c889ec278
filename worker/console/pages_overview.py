"""Overview: the fleet right now, refreshed live over server-sent events.

The figures come from the same snapshot as `fleet top` (worker/ops/live.py), plus
depths per lane, the live workers and a per-minute line of the last hour.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from worker.console.app import CONSOLE, HEADERS, Console, render
from worker.console.html import Markup, esc, line_chart, line_points, table
from worker.errors import WorkerError
from worker.ops.live import collect_snapshot
from worker.store.console import live_workers, throughput_series

__all__ = ["gather", "setup"]

SSE_INTERVAL = 2.0


async def gather(console: Console) -> dict[str, Any]:
    """Every figure the overview shows, as plain values."""
    queue, store = console.sqs(), console.db()
    assert console.http is not None
    shot = await collect_snapshot(queue, store, console.metrics_urls, console.http)
    lanes: dict[str, dict[str, int]] = {}
    for lane in list(queue.lanes):
        work, dead = await queue.depth(False, lane), await queue.depth(True, lane)
        lanes[lane] = {
            "visible": work.visible,
            "inFlight": work.in_flight,
            "delayed": work.delayed,
            "dlq": dead.visible,
        }
    series = await throughput_series(store, 60)
    workers = await live_workers(store)
    figures = {
        "throughput": f"{shot.per_second:.2f}/s",
        "p50": f"{shot.latency.get('p50', 0):.2f}s",
        "p95": f"{shot.latency.get('p95', 0):.2f}s",
        "p99": f"{shot.latency.get('p99', 0):.2f}s",
        "inFlight": str(shot.in_flight),
        "workers": str(shot.workers),
        "dlq": str(shot.queue.get("dlq", 0)),
        "costPerMinute": f"${shot.cost_per_minute:.4f}",
    }
    for lane_name, depth in lanes.items():
        for key, value in depth.items():
            figures[f"{lane_name}-{key}"] = str(value)
    return {
        "at": datetime.now(UTC).strftime("%H:%M:%S UTC"),
        "figures": figures,
        "lanes": lanes,
        "breakers": shot.breakers,
        "errors": shot.errors,
        "series": [int(r["completed"]) for r in series],
        "workers": workers,
    }


def _cards(figures: dict[str, str]) -> str:
    names = [
        ("throughput", "throughput (last 60 s)"),
        ("p50", "latency p50"),
        ("p95", "latency p95"),
        ("p99", "latency p99"),
        ("inFlight", "in flight"),
        ("workers", "live workers"),
        ("dlq", "DLQ depth"),
        ("costPerMinute", "cost / minute"),
    ]
    return "".join(
        f'<div class="card"><div class="k">{esc(label)}</div>'
        f'<div class="v" data-figure="{key}">{esc(figures[key])}</div></div>'
        for key, label in names
    )


def _lanes(lanes: dict[str, dict[str, int]]) -> str:
    head = "<tr><th>lane</th><th class=n>visible</th><th class=n>in flight</th>"
    head += "<th class=n>delayed</th><th class=n>DLQ</th></tr>"
    rows = "".join(
        f"<tr><td>{esc(lane)}</td>"
        + "".join(
            f'<td class=n data-figure="{esc(lane)}-{key}">{esc(value)}</td>'
            for key, value in depth.items()
        )
        + "</tr>"
        for lane, depth in lanes.items()
    )
    return f"<table>{head}{rows}</table>"


async def overview(request: web.Request) -> web.Response:
    data = await gather(request.app[CONSOLE])
    breakers = sorted(data["breakers"].items()) or [("(no worker /metrics reachable)", "—")]
    workers = [
        (w["id"], w["host"], w["pid"], w["in_flight"], w["last_seen"]) for w in data["workers"]
    ]
    body = (
        f'<div data-live="/events"><p class="muted">live · updated '
        f'<span data-updated>{esc(data["at"])}</span></p>'
        f'<div class="cards">{_cards(data["figures"])}</div>'
        "<h2>Completed per minute, last hour</h2>"
        f"{line_chart([float(v) for v in data['series']], 'completed/min')}"
        f"<h2>Queues by lane</h2>{_lanes(data['lanes'])}"
        f"<h2>Provider breakers</h2>{table(['provider', 'state'], breakers)}"
        "<h2>Errors, last 5 minutes</h2>"
        f"{table(['error code', 'workflows'], sorted(data['errors'].items()), ['workflows'])}"
        "<h2>Live workers</h2>"
        f"{table(['worker', 'host', 'pid', 'in flight', 'last seen'], workers, ['in flight'])}"
        "</div>"
    )
    return render(request, "Overview", Markup(body))


async def events(request: web.Request) -> web.StreamResponse:
    """A snapshot event every two seconds until the browser goes away."""
    console = request.app[CONSOLE]
    response = web.StreamResponse(
        headers={**HEADERS, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    while request.transport is not None and not request.transport.is_closing():
        try:
            data = await gather(console)
        except WorkerError as exc:
            payload = json.dumps({"error": type(exc).__name__})
            await response.write(f"event: problem\ndata: {payload}\n\n".encode())
        else:
            message = {
                "at": data["at"],
                "figures": data["figures"],
                "points": line_points([float(v) for v in data["series"]]),
            }
            try:
                await response.write(f"event: snapshot\ndata: {json.dumps(message)}\n\n".encode())
            except ConnectionResetError:
                break
        await asyncio.sleep(SSE_INTERVAL)
    return response


async def api_overview(request: web.Request) -> web.Response:
    data = await gather(request.app[CONSOLE])
    return web.json_response(data, dumps=lambda v: json.dumps(v, default=str))


def setup(app: web.Application) -> None:
    app.router.add_get("/", overview)
    app.router.add_get("/events", events)
    app.router.add_get("/api/overview", api_overview)
