"""Server-side HTML: escaping, the page layout, tables, forms and small SVG charts.

Everything that reaches a page goes through ``esc`` (or is built here from escaped
parts), so a workflow id, a user id or an error message can never become markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from html import escape
from importlib import resources
from string import Template
from typing import Any
from urllib.parse import urlencode

from worker.console.auth import Principal

__all__ = [
    "Markup",
    "bar_chart",
    "cell",
    "esc",
    "hidden",
    "line_points",
    "page",
    "query",
    "table",
]

NAV = (
    ("/", "Overview"),
    ("/workflows", "Workflows"),
    ("/dlq", "Dead letters"),
    ("/costs", "Costs"),
)


class Markup(str):
    """Text that is HTML already (built here from escaped parts)."""


def esc(value: object) -> Markup:
    if isinstance(value, Markup):
        return value
    return Markup(escape(cell(value), quote=True))


def cell(value: object) -> str:
    """A value as a person reads it."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | float):
        return f"{float(value):,.6f}".rstrip("0").rstrip(".") or "0"
    return str(value)


@cache
def _layout() -> Template:
    text = (resources.files("worker.console") / "templates" / "layout.html").read_text()
    return Template(text)


def page(title: str, body: str, principal: Principal | None, csrf: str | None, path: str) -> str:
    nav = "".join(
        f'<a href="{href}"{" class=on" if _here(path, href) else ""}>{label}</a>'
        for href, label in NAV
    )
    who = ""
    if principal is not None:
        who = (
            f"{esc(principal.name)} ({esc(principal.role)})"
            f'<form method="post" action="/logout">{hidden("csrf", csrf or "")}'
            '<button class="quiet" type="submit">Sign out</button></form>'
        )
    return _layout().substitute(
        title=esc(title), nav=nav if principal else "", who=who, body=body
    )


def _here(path: str, href: str) -> bool:
    return path == href if href == "/" else path.startswith(href)


def hidden(name: str, value: str) -> Markup:
    return Markup(f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">')


def query(**params: object) -> str:
    return urlencode({k: cell(v) for k, v in params.items() if v not in (None, "")})


def table(
    headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: Iterable[str] = ()
) -> Markup:
    right = set(numeric)
    head = "".join(f'<th{" class=n" if h in right else ""}>{esc(h)}</th>' for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td{" class=n" if h in right else ""}>{esc(v)}</td>'
            for h, v in zip(headers, row, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    if not body:
        body = f'<tr><td colspan="{len(headers)}" class="muted">nothing here</td></tr>'
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def line_points(values: Sequence[float], width: int = 600, height: int = 120) -> str:
    """SVG polyline points for ``values`` scaled into the box (the top is the maximum)."""
    if not values:
        return ""
    top = max(max(values), 1e-9)
    step = width / max(len(values) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - 4 - (v / top) * (height - 14):.1f}" for i, v in enumerate(values)
    )


def line_chart(values: Sequence[float], label: str, width: int = 600, height: int = 120) -> Markup:
    top = max(values) if values else 0
    return Markup(
        f'<svg id="series" class="chart" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="{esc(label)}">'
        f'<text x="4" y="11">{esc(label)} (max {esc(cell(top))})</text>'
        f'<polyline points="{line_points(values, width, height)}"/></svg>'
    )


def bar_chart(
    bars: Sequence[tuple[str, float]], label: str, width: int = 600, height: int = 140
) -> Markup:
    if not bars:
        return Markup(f'<p class="muted">{esc(label)}: no data</p>')
    top = max(max(v for _, v in bars), 1e-9)
    slot = width / len(bars)
    parts = []
    for i, (name, value) in enumerate(bars):
        tall = (value / top) * (height - 30)
        parts.append(
            f'<rect class="bar" x="{i * slot + 1:.1f}" y="{height - 16 - tall:.1f}"'
            f' width="{max(slot - 2, 1):.1f}" height="{tall:.1f}"><title>{esc(name)}: '
            f"{esc(cell(value))}</title></rect>"
        )
    parts.append(f'<text x="2" y="{height - 3}">{esc(bars[0][0])}</text>')
    parts.append(f'<text x="{width - 70}" y="{height - 3}">{esc(bars[-1][0])}</text>')
    return Markup(
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' role="img" aria-label="{esc(label)}"><text x="4" y="11">{esc(label)}'
        f" (max {esc(cell(top))})</text>{''.join(parts)}</svg>"
    )


def pretty(value: Any) -> Markup:
    import json

    return Markup(f"<pre>{esc(json.dumps(value, indent=2, default=str))}</pre>")
