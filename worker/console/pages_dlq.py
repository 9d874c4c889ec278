"""Dead letters: why each message left, replay (previewed first) and purge (typed
confirmation), every action written to ``console_audit`` with who did it.

The queue work is the DLQ workbench's (worker/ops/dlq.py), the same as `fleet dlq`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from multidict import MultiMapping

from worker.console.app import CONSOLE, csrf_field, principal_of, render, require_operator
from worker.console.html import Markup, esc, hidden, table
from worker.observability.logging import sanitize
from worker.ops.dlq import DlqEntry, DlqFilter, DlqGlance
from worker.store.console import recent_audit, record_audit

__all__ = ["setup"]

FIELDS = ("intent", "error", "user", "text")
HOLD_SECONDS = 30


def _filter(values: MultiMapping[Any], with_ids: bool) -> DlqFilter:
    picked = {str(v) for v in values.getall("id", []) if v} if with_ids else set()
    return DlqFilter(
        intent=str(values.get("intent") or "") or None,
        error=str(values.get("error") or "") or None,
        user=str(values.get("user") or "") or None,
        text=str(values.get("text") or "") or None,
        ids=frozenset(picked),
    )


def _terms(chosen: DlqFilter) -> dict[str, Any]:
    return {k: getattr(chosen, k) for k in FIELDS if getattr(chosen, k)} | (
        {"ids": sorted(chosen.ids)} if chosen.ids else {}
    )


async def _matching(request: web.Request, chosen: DlqFilter, keep: bool) -> list[DlqEntry]:
    """Read the DLQ; release what is not chosen (and the chosen too unless ``keep``)."""
    bench = request.app[CONSOLE].workbench()
    entries = await bench.scan(hold_seconds=HOLD_SECONDS)
    picked = [e for e in entries if chosen.matches(e)]
    await bench.release(e for e in entries if keep is False or e not in picked)
    return picked


def _rows(entries: list[DlqEntry], selectable: bool) -> str:
    heads = ["", "DLQ message", "workflow", "intent", "user", "class", "code", "age s", "replays",
             "reason"]
    rows = []
    for e in entries:
        box = (
            Markup(f'<input type="checkbox" name="id" value="{esc(e.message.message_id)}">')
            if selectable else ""
        )
        link = (
            Markup(f'<a href="/workflows/{esc(e.workflow_id)}">{esc(e.workflow_id)}</a>')
            if e.workflow_id else "—"
        )
        rows.append((
            box, e.message.message_id, link, e.intent_type, e.user_id, e.error_class,
            e.error_code, round(e.age_seconds), e.replay_count, sanitize(e.error_message),
        ))
    return table(heads, rows, ["age s", "replays"])


def _filter_form(chosen: DlqFilter) -> str:
    boxes = "".join(
        f'<label>{name}<input name="{name}" value="{esc(getattr(chosen, name) or "")}"></label>'
        for name in FIELDS
    )
    return f'<form class="filters" method="get" action="/dlq">{boxes}<button>Filter</button></form>'


def _shortfall(seen: DlqGlance) -> str:
    if not seen.missing:
        return ""
    return (
        f"<p class=notice>This read brought back {len(seen.entries)} of the {seen.depth} "
        f"messages the dead-letter queues reported: {seen.missing} did not come back in one "
        "quick pass (held by another read, or not yet returned by SQS). Reload to read "
        "again; a preview or purge of all matching reads every message first, and "
        "<code>fleet dlq list</code> waits for all of them.</p>"
    )


async def dlq(request: web.Request) -> web.Response:
    """The list: one quick read of the DLQs (never a waiting poll), said so when it shows
    fewer messages than their depth; actions read everything again (``_matching``)."""
    chosen = _filter(request.query, with_ids=False)
    bench = request.app[CONSOLE].workbench()
    seen = await bench.glance(hold_seconds=HOLD_SECONDS)
    await bench.release(seen.entries)
    entries = [e for e in seen.entries if chosen.matches(e)]
    operator = principal_of(request).may_operate
    counted = "" if seen.missing else f" {len(entries)}"
    hiddens = "".join(hidden(k, str(v)) for k, v in _terms(chosen).items() if k != "ids")
    actions = ""
    if operator:
        actions = (
            '<p><button type="submit" formaction="/dlq/replay">Preview replay of selected'
            '</button> <button type="submit" name="all" value="1" formaction="/dlq/replay">'
            f"Preview replay of all{counted} matching</button> "
            '<button class="danger" type="submit" name="all" value="1" formaction="/dlq/purge">'
            "Purge all matching…</button></p>"
        )
    select_all = '<label class="muted"><input type="checkbox" data-select-all> select all</label>'
    audit = await recent_audit(request.app[CONSOLE].db(), 20)
    body = (
        f"{_filter_form(chosen)}{_shortfall(seen)}<p>{len(entries)} dead-lettered message(s)</p>"
        f'<form method="post">{csrf_field(request)}{hiddens}'
        f"{select_all if operator else ''}{_rows(entries, operator)}{actions}</form>"
        "<h2>Recent console actions</h2>"
        + table(
            ["at", "who", "role", "action", "count", "detail"],
            [(a["at"], a["actor"], a["role"], a["action"], a["count"], a["detail"])
             for a in audit],
            ["count"],
        )
    )
    return render(request, "Dead letters", Markup(body))


def _scope(form: MultiMapping[Any]) -> DlqFilter:
    chosen = _filter(form, with_ids=form.get("all") != "1")
    if form.get("all") != "1" and not chosen.ids:
        raise web.HTTPBadRequest(text="400: select messages, or choose all matching")
    return chosen


def _carry(form: MultiMapping[Any]) -> str:
    keep = [*FIELDS, "all", "id"]
    return "".join(hidden(k, str(v)) for k, v in form.items() if k in keep)


async def replay(request: web.Request) -> web.Response:
    who = require_operator(request)
    form = await request.post()
    chosen = _scope(form)
    if form.get("confirm") != "1":  # the dry run: nothing changes
        picked = await _matching(request, chosen, keep=False)
        body = (
            f"<p class=notice>Dry run: {len(picked)} message(s) would be replayed.</p>"
            f"{_rows(picked, False)}"
            f'<form method="post" action="/dlq/replay">{csrf_field(request)}{_carry(form)}'
            f'{hidden("confirm", "1")}<button type="submit">Replay {len(picked)} now</button>'
            '</form><p><a href="/dlq">Back</a></p>'
        )
        return render(request, "Replay preview", Markup(body))
    picked = await _matching(request, chosen, keep=True)
    done = await request.app[CONSOLE].workbench().replay(picked)
    detail = _terms(chosen) | {"workflows": [r.entry.workflow_id for r in done][:100]}
    await record_audit(request.app[CONSOLE].db(), who.name, who.role, "replay", len(done), detail)
    links = "".join(
        f'<li><a href="/workflows/{esc(r.entry.workflow_id)}">{esc(r.entry.workflow_id)}</a></li>'
        for r in done if r.entry.workflow_id
    )
    body = f"<p class=notice>Replayed {len(done)} message(s).</p><ul>{links}</ul>"
    return render(request, "Replayed", Markup(body + '<p><a href="/dlq">Back</a></p>'))


async def purge(request: web.Request) -> web.Response:
    who = require_operator(request)
    form = await request.post()
    chosen = _scope(form)
    typed = str(form.get("typed") or "").strip()
    if not typed:
        picked = await _matching(request, chosen, keep=False)
        return _purge_form(request, form, len(picked))
    picked = await _matching(request, chosen, keep=True)
    bench = request.app[CONSOLE].workbench()
    if typed != f"purge {len(picked)}":
        await bench.release(picked)
        return _purge_form(request, form, len(picked), f"You typed {typed!r}.", 400)
    count = await bench.purge(picked)
    detail = _terms(chosen) | {"messages": [e.message.message_id for e in picked][:100]}
    await record_audit(request.app[CONSOLE].db(), who.name, who.role, "purge", count, detail)
    body = f'<p class=notice>Deleted {count} message(s) for good.</p><p><a href="/dlq">Back</a>'
    return render(request, "Purged", Markup(body))


def _purge_form(
    request: web.Request, form: MultiMapping[Any], count: int, problem: str = "",
    status: int = 200,
) -> web.Response:
    body = (
        (f"<p class=error>{esc(problem)}</p>" if problem else "")
        + f"<p class=notice>{count} message(s) would be deleted for good. Type "
        f"<code>purge {count}</code> to confirm.</p>"
        f'<form method="post" action="/dlq/purge">{csrf_field(request)}{_carry(form)}'
        '<label>confirmation<input name="typed" autocomplete="off"></label>'
        '<button class="danger" type="submit">Purge</button></form>'
    )
    return render(request, "Purge", Markup(body), status=status)


def setup(app: web.Application) -> None:
    app.router.add_get("/dlq", dlq)
    app.router.add_post("/dlq/replay", replay)
    app.router.add_post("/dlq/purge", purge)
