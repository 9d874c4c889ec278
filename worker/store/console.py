"""The web console's read model: one named query per question a page asks.

Every function takes anything that lends connections (a ``Store`` or a ``Pool``).
Lists are keyset-paginated newest first on (created_at, id)
and served by the indexes of migration 0010_console.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from worker.store.pool import Connects, Row
from worker.store.repository import Store


async def _rows(db: Connects, sql: Any, params: Any = ()) -> list[Row]:
    """The rows of one statement (none for a statement that returns none)."""
    async with db.connection() as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchall() if cur.description else []

__all__ = [
    "COST_GROUPS",
    "WorkflowQuery",
    "cost_by_day",
    "cost_table",
    "cost_total",
    "live_workers",
    "recent_audit",
    "record_audit",
    "search_workflows",
    "throughput_series",
    "workflow_detail",
]


COST_GROUPS = {
    "user": "user_id",
    "provider": "provider",
    "intent": "intent_type",
    "model": "model",
    "day": "(created_at AT TIME ZONE 'UTC')::date",
}


@dataclass(frozen=True, slots=True)
class WorkflowQuery:
    """Search terms; ``after`` is the (created_at, id) of the last row already shown."""

    workflow_id: str | None = None
    user: str | None = None
    type: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: tuple[datetime, str] | None = None
    limit: int = 50


async def search_workflows(store: Store, query: WorkflowQuery) -> list[Row]:
    """One page of workflows, newest first, with one row more than asked when more exist."""
    where: list[str] = []
    params: list[Any] = []
    terms = (
        ("id = %s", query.workflow_id),
        ("user_id = %s", query.user),
        ("type = %s", query.type),
        ("status = %s", query.status),
        ("created_at >= %s", query.since),
        ("created_at < %s", query.until),
    )
    for clause, value in terms:
        if value is not None:
            where.append(clause)
            params.append(value)
    if query.after is not None:
        where.append("(created_at, id) < (%s, %s)")
        params.extend(query.after)
    sql = (
        "SELECT id, type, user_id, status, priority, attempts, provider, error_code,"
        " created_at, updated_at, completed_at FROM workflows"
        + (" WHERE " + " AND ".join(where) if where else "")
        + " ORDER BY created_at DESC, id DESC LIMIT %s"
    )
    return await _rows(store, sql, (*params, query.limit + 1))


async def workflow_detail(store: Store, workflow_id: str) -> dict[str, Any] | None:
    """The workflow row, its LLM calls, sends, dead letters and replays."""
    rows = await _rows(store, "SELECT * FROM workflows WHERE id = %s", (workflow_id,))
    if not rows:
        return None
    calls = await _rows(store,
        "SELECT created_at, provider, model, prompt_tokens, completion_tokens, usage_source,"
        " cost_usd, duration_ms, attempt, receive_count, cache_hit, outcome, error_code"
        " FROM llm_calls WHERE workflow_id = %s ORDER BY id LIMIT 500",
        (workflow_id,),
    )
    sends = await _rows(store,
        "SELECT id, recipient_id, slot_at, status, attempts, gateway_message_id, error_code,"
        " sent_at FROM onlyfans_sends WHERE workflow_id = %s ORDER BY id LIMIT 500",
        (workflow_id,),
    )
    dead = await _rows(store,
        "SELECT id, message_id, error_class, error_code, error_message, receive_count,"
        " history, created_at FROM dead_letters WHERE workflow_id = %s ORDER BY id LIMIT 100",
        (workflow_id,),
    )
    replays = await _rows(store,
        "SELECT dlq_message_id, new_message_id, replay_count, mode, replayed_at"
        " FROM replays WHERE workflow_id = %s ORDER BY id LIMIT 100",
        (workflow_id,),
    )
    return {
        "workflow": rows[0],
        "calls": calls,
        "sends": sends,
        "deadLetters": dead,
        "replays": replays,
    }


async def throughput_series(store: Store, minutes: int = 60) -> list[Row]:
    """Completed and failed workflows and cost per minute over the last ``minutes``."""
    return await _rows(store,
        "WITH m AS (SELECT generate_series(date_trunc('minute', now())"
        " - make_interval(mins => %(n)s - 1), date_trunc('minute', now()),"
        " interval '1 minute') AS minute),"
        " done AS (SELECT date_trunc('minute', completed_at) AS minute, count(*) AS n"
        " FROM workflows WHERE completed_at >= date_trunc('minute', now())"
        " - make_interval(mins => %(n)s - 1) GROUP BY 1),"
        " cost AS (SELECT date_trunc('minute', created_at) AS minute, sum(cost_usd) AS usd"
        " FROM llm_calls WHERE created_at >= date_trunc('minute', now())"
        " - make_interval(mins => %(n)s - 1) GROUP BY 1)"
        " SELECT m.minute, coalesce(done.n, 0) AS completed, coalesce(cost.usd, 0) AS usd"
        " FROM m LEFT JOIN done USING (minute) LEFT JOIN cost USING (minute) ORDER BY m.minute",
        {"n": minutes},
    )


async def live_workers(store: Store, within_seconds: float = 60.0) -> list[Row]:
    return await _rows(store,
        "SELECT id, host, pid, started_at, last_seen, in_flight FROM workers"
        " WHERE last_seen > now() - make_interval(secs => %s) ORDER BY id LIMIT 200",
        (within_seconds,),
    )


def _range(since: datetime, until: datetime | None) -> tuple[str, tuple[Any, ...]]:
    if until is None:
        return "created_at >= %s", (since,)
    return "created_at >= %s AND created_at < %s", (since, until)


async def cost_total(store: Store, since: datetime, until: datetime | None = None) -> Row:
    where, params = _range(since, until)
    rows = await _rows(store,
        "SELECT count(*) AS calls, coalesce(sum(cost_usd), 0) AS usd,"
        f" coalesce(sum(prompt_tokens + completion_tokens), 0) AS tokens"
        f" FROM llm_calls WHERE {where}",
        params,
    )
    return rows[0]


async def cost_table(
    store: Store, by: str, since: datetime, until: datetime | None = None, limit: int = 100
) -> list[Row]:
    """Calls, tokens and USD grouped by one of ``COST_GROUPS``, most expensive first."""
    column = COST_GROUPS[by]  # a KeyError for anything else: never user text in SQL
    where, params = _range(since, until)
    return await _rows(store,
        f'SELECT {column} AS "key", count(*) AS calls,'
        " sum(prompt_tokens + completion_tokens) AS tokens, sum(cost_usd) AS usd"
        f" FROM llm_calls WHERE {where} GROUP BY 1 ORDER BY usd DESC NULLS LAST, 1 LIMIT %s",
        (*params, limit),
    )


async def cost_by_day(store: Store, since: datetime, until: datetime | None = None) -> list[Row]:
    """Calls, tokens and USD per UTC day (the page adds them up for its totals)."""
    where, params = _range(since, until)
    return await _rows(store,
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS calls,"
        " coalesce(sum(prompt_tokens + completion_tokens), 0) AS tokens,"
        f" coalesce(sum(cost_usd), 0) AS usd FROM llm_calls WHERE {where} GROUP BY 1 ORDER BY 1",
        params,
    )


async def record_audit(
    store: Store, actor: str, role: str, action: str, count: int, detail: dict[str, Any]
) -> None:
    """Who did what from the console (replay, purge, sign-in refused...)."""
    await _rows(store,
        "INSERT INTO console_audit (actor, role, action, count, detail)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (actor, role, action, count, Jsonb(detail)),
    )


async def recent_audit(store: Store, limit: int = 50) -> list[Row]:
    return await _rows(store,
        "SELECT at, actor, role, action, count, detail FROM console_audit"
        " ORDER BY at DESC, id DESC LIMIT %s",
        (limit,),
    )
