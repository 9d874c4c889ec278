"""Costs: LLM spend by user, provider, intent, model and day, a chart, and CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

from aiohttp import web

from worker.console.app import CONSOLE, render
from worker.console.html import Markup, bar_chart, cell, esc, query, table
from worker.console.pages_workflows import parse_time
from worker.store.reads import COST_COLUMNS, cost_breakdown, cost_page

__all__ = ["setup"]

_SPAN = re.compile(r"^(\d{1,4})([hd])$")


def _window(request: web.Request) -> tuple[str, datetime, datetime | None]:
    """``since`` is a span (``24h``, ``7d``, default 7d) or a date; ``until`` a date."""
    raw = request.query.get("since", "7d").strip() or "7d"
    span = _SPAN.match(raw)
    if span:
        amount, unit = int(span.group(1)), span.group(2)
        since = datetime.now(UTC) - timedelta(hours=amount if unit == "h" else amount * 24)
    else:
        since = parse_time(raw) or datetime.now(UTC)
    return raw, since, parse_time(request.query.get("until"))


def _group(request: web.Request) -> str:
    by = request.query.get("by", "user")
    if by not in COST_COLUMNS:
        raise web.HTTPBadRequest(text=f"400: group by one of {', '.join(COST_COLUMNS)}")
    return by


async def costs(request: web.Request) -> web.Response:
    raw, since, until = _window(request)
    by = _group(request)
    store = request.app[CONSOLE].db()
    days, rows = await cost_page(store, by, since, until, limit=100)  # from the rollups
    total = {k: sum(d[k] for d in days) for k in ("calls", "tokens", "usd")}
    options = "".join(
        f'<option value="{g}"{" selected" if g == by else ""}>{g}</option>' for g in COST_COLUMNS
    )
    until_text = request.query.get("until", "")
    form = (
        '<form class="filters" method="get" action="/costs">'
        f'<label>since<input name="since" value="{esc(raw)}"></label>'
        f'<label>until<input name="until" value="{esc(until_text)}"></label>'
        f'<label>by<select name="by">{options}</select></label>'
        "<button type=submit>Show</button>"
        f'<a href="/costs.csv?{esc(query(since=raw, until=until_text, by=by))}">'
        "Download CSV</a></form>"
    )
    summary = (
        f'<div class="cards"><div class="card"><div class="k">total USD</div>'
        f'<div class="v">{esc(cell(total["usd"]))}</div></div>'
        f'<div class="card"><div class="k">calls</div><div class="v">{esc(total["calls"])}'
        f'</div></div><div class="card"><div class="k">tokens</div>'
        f'<div class="v">{esc(total["tokens"])}</div></div></div>'
    )
    chart = bar_chart([(str(d["day"]), float(d["usd"] or 0)) for d in days], "USD per day")
    listing = table(
        [by, "calls", "tokens", "USD"],
        [(r[by], r["calls"], r["tokens"], r["usd"]) for r in rows],
        ["calls", "tokens", "USD"],
    )
    body = f"{form}{summary}<h2>Per day</h2>{chart}<h2>By {esc(by)}</h2>{listing}"
    return render(request, "Costs", Markup(body))


async def costs_csv(request: web.Request) -> web.Response:
    _raw, since, until = _window(request)
    by = _group(request)
    db = request.app[CONSOLE].db()
    rows = await cost_breakdown(db, since, [by], until=until, limit=100_000)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([by, "calls", "tokens", "usd"])
    for r in rows:
        key = str(r[by])
        if key[:1] in ("=", "+", "-", "@"):  # a spreadsheet must not run a user id as a formula
            key = "'" + key
        writer.writerow([key, r["calls"], r["tokens"], r["usd"]])
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="fleet-costs-by-{by}.csv"'},
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/costs", costs)
    app.router.add_get("/costs.csv", costs_csv)
