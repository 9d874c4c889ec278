"""Workflows: search (keyset pages, newest first) and one workflow in full.

The intent's own data is not stored by the fleet (only its type, user and
priority); what is shown of it, the result and every error go through the log
sanitizer first, so no secret or message content reaches the page.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from worker.console.app import CONSOLE, render
from worker.console.html import Markup, esc, pretty, query, table
from worker.observability.logging import sanitize
from worker.store.console import WorkflowQuery, search_workflows, workflow_detail

__all__ = ["parse_time", "setup"]

STATUSES = ("", "running", "retrying", "waiting", "completed", "failed")
TYPES = ("", "content_planning", "message_generation", "content_validation", "campaign_execution")
PAGE = 50


def parse_time(text: str | None) -> datetime | None:
    """``2026-11-26`` or ``2026-11-26T10:00`` (UTC); anything else is a 400."""
    if not text:
        return None
    try:
        found = datetime.fromisoformat(text)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"400: not a date or time: {text[:40]!r}") from exc
    return found if found.tzinfo else found.replace(tzinfo=UTC)


def _cursor(text: str | None) -> tuple[datetime, str] | None:
    if not text:
        return None
    try:
        stamp, _, ident = base64.urlsafe_b64decode(text.encode()).decode().partition("|")
        return datetime.fromisoformat(stamp), ident
    except (ValueError, binascii.Error) as exc:
        raise web.HTTPBadRequest(text="400: bad page cursor") from exc


def _next_cursor(row: dict[str, Any]) -> str:
    raw = f"{row['created_at'].isoformat()}|{row['id']}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _select(name: str, options: tuple[str, ...], chosen: str) -> str:
    items = "".join(
        f'<option value="{esc(o)}"{" selected" if o == chosen else ""}>{esc(o or "any")}</option>'
        for o in options
    )
    return f'<label>{esc(name)}<select name="{esc(name)}">{items}</select></label>'


def _filters(q: dict[str, str]) -> str:
    def box(name: str, kind: str = "text") -> str:
        return (
            f'<label>{esc(name)}<input type="{kind}" name="{esc(name)}"'
            f' value="{esc(q.get(name, ""))}"></label>'
        )

    return (
        '<form class="filters" method="get" action="/workflows">'
        f"{box('id')}{box('user')}{_select('type', TYPES, q.get('type', ''))}"
        f"{_select('status', STATUSES, q.get('status', ''))}"
        f"{box('since')}{box('until')}<button type=submit>Search</button></form>"
    )


async def workflows(request: web.Request) -> web.Response:
    q = {k: v.strip() for k, v in request.query.items() if v.strip()}
    wanted = q.get("id")
    if wanted and "after" not in q and len(q) == 1:
        store = request.app[CONSOLE].db()
        if await workflow_detail(store, wanted) is not None:
            raise web.HTTPSeeOther(f"/workflows/{wanted}")
    found = await search_workflows(
        request.app[CONSOLE].db(),
        WorkflowQuery(
            workflow_id=wanted,
            user=q.get("user"),
            type=q.get("type"),
            status=q.get("status"),
            since=parse_time(q.get("since")),
            until=parse_time(q.get("until")),
            after=_cursor(q.get("after")),
            limit=PAGE,
        ),
    )
    rows = found[:PAGE]
    links = [
        (
            Markup(f'<a href="/workflows/{esc(r["id"])}">{esc(r["id"])}</a>'),
            r["type"], r["user_id"], r["status"], r["attempts"], r["provider"],
            r["error_code"], r["created_at"],
        )
        for r in rows
    ]
    more = ""
    if len(found) > PAGE:
        params = {k: v for k, v in q.items() if k != "after"}
        more = (
            f'<p><a href="/workflows?{esc(query(**params, after=_next_cursor(rows[-1])))}"'
            ' rel="next">Older →</a></p>'
        )
    headers = ["workflow", "type", "user", "status", "attempts", "provider", "error", "created"]
    body = _filters(q) + table(headers, links, ["attempts"]) + more
    return render(request, "Workflows", Markup(body))


def _intent(wf: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": wf["type"],
        "userId": wf["user_id"],
        "priority": wf["priority"],
        "parentId": wf.get("parent_id"),
        "traceId": wf.get("trace_id"),
        "progress": wf.get("progress"),
    }


def _detail_body(found: dict[str, Any]) -> str:
    wf = found["workflow"]
    summary = table(
        ["status", "attempts", "provider", "error", "created", "updated", "completed"],
        [(
            wf["status"], wf["attempts"], wf["provider"], wf["error_code"],
            wf["created_at"], wf["updated_at"], wf["completed_at"],
        )],
    )
    calls = [
        (
            c["created_at"], c["provider"], c["model"], c["prompt_tokens"],
            c["completion_tokens"], c["usage_source"], c["cost_usd"], c["duration_ms"],
            c["attempt"], c["outcome"], c["error_code"],
        )
        for c in found["calls"]
    ]
    call_heads = [
        "at", "provider", "model", "prompt", "completion", "usage", "USD", "ms", "attempt",
        "outcome", "error",
    ]
    sends = [tuple(s.values()) for s in found["sends"]]
    send_heads = ["id", "recipient", "slot", "status", "attempts", "gateway id", "error", "sent"]
    dead = [
        (d["message_id"], d["error_class"], d["error_code"], sanitize(d["error_message"]),
         d["receive_count"], d["created_at"])
        for d in found["deadLetters"]
    ]
    dead_heads = ["message", "class", "code", "reason", "receives", "at"]
    replays = [tuple(r.values()) for r in found["replays"]]
    return (
        f'<p>status <strong class="status-{esc(wf["status"])}" data-status>'
        f"{esc(wf['status'])}</strong></p>{summary}"
        f"<h2>Intent (sanitized)</h2>{pretty(sanitize(_intent(wf)))}"
        f"<h2>Last error</h2>{pretty(sanitize(wf['error_message']))}"
        f"<h2>Result (sanitized)</h2>{pretty(sanitize(wf['result']))}"
        f"<h2>LLM calls</h2>{table(call_heads, calls, ['prompt', 'completion', 'USD', 'ms'])}"
        f"<h2>OnlyFans sends</h2>{table(send_heads, sends)}"
        f"<h2>Dead letters</h2>{table(dead_heads, dead)}"
        f"<h2>Replays</h2>{table(['DLQ message', 'new message', 'count', 'mode', 'at'], replays)}"
    )


async def workflow(request: web.Request) -> web.Response:
    ident = request.match_info["id"]
    found = await workflow_detail(request.app[CONSOLE].db(), ident)
    if found is None:
        raise web.HTTPNotFound(text=f"404: no workflow {ident[:80]}")
    return render(request, f"Workflow {ident}", Markup(_detail_body(found)))


async def api_workflow(request: web.Request) -> web.Response:
    found = await workflow_detail(request.app[CONSOLE].db(), request.match_info["id"])
    if found is None:
        raise web.HTTPNotFound(text="404: no such workflow")
    wf = found["workflow"]
    found["workflow"] = {
        **{k: wf[k] for k in ("id", "type", "user_id", "status", "attempts", "provider")},
        "intent": sanitize(_intent(wf)),
        "result": sanitize(wf["result"]),
        "errorCode": wf["error_code"],
        "errorMessage": sanitize(wf["error_message"]),
    }
    found["deadLetters"] = sanitize(found["deadLetters"])
    return web.json_response(found, dumps=_dumps)


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, default=str)


def setup(app: web.Application) -> None:
    app.router.add_get("/workflows", workflows)
    app.router.add_get("/workflows/{id}", workflow)
    app.router.add_get("/api/workflows/{id}", api_workflow)
