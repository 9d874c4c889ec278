"""`fleet top`: what the fleet did in the last minute (throughput, latency, workers, cost)
and in the last five (errors, statuses). Every worker writes here, so one query sees all."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import LiteralString

from worker.store.pool import Conn, Connects, Row

__all__ = ["Activity", "recent_activity"]

_WORKERS = """
SELECT count(*) AS workers, coalesce(sum(in_flight), 0) AS in_flight FROM workers
 WHERE last_seen > now() - interval '60 seconds'
"""

_DONE = """
WITH done AS (
    SELECT EXTRACT(EPOCH FROM completed_at - created_at) AS seconds FROM workflows
     WHERE completed_at > now() - interval '60 seconds'
)
SELECT count(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds) AS p95,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY seconds) AS p99
  FROM done
"""

_ERRORS = """
SELECT error_code, count(*) AS n FROM workflows
 WHERE error_code IS NOT NULL AND updated_at > now() - interval '5 minutes'
 GROUP BY error_code ORDER BY n DESC
"""

_STATUSES = """
SELECT status, count(*) AS n FROM workflows
 WHERE updated_at > now() - interval '5 minutes' GROUP BY status
"""

_COST = """
SELECT coalesce(sum(cost_usd), 0) AS usd FROM llm_calls
 WHERE created_at > now() - interval '60 seconds'
"""


@dataclass(slots=True)
class Activity:
    workers: int = 0  # seen in the last minute
    in_flight: int = 0  # as those workers last reported
    completed: int = 0  # workflows completed in the last minute
    latency: dict[str, float] = field(default_factory=dict)  # p50/p95/p99, claim to done
    errors: dict[str, int] = field(default_factory=dict)  # by error code, last 5 minutes
    statuses: dict[str, int] = field(default_factory=dict)  # last 5 minutes
    cost_usd: Decimal = Decimal(0)  # last minute


async def _one(conn: Conn, query: LiteralString) -> Row:
    row = await (await conn.execute(query)).fetchone()
    assert row is not None  # aggregates always answer
    return row


async def _counts(conn: Conn, query: LiteralString, key: str) -> dict[str, int]:
    rows = await (await conn.execute(query)).fetchall()
    return {str(r[key]): int(r["n"]) for r in rows}


async def recent_activity(db: Connects) -> Activity:
    async with db.connection() as conn:
        workers = await _one(conn, _WORKERS)
        done = await _one(conn, _DONE)
        errors = await _counts(conn, _ERRORS, "error_code")
        statuses = await _counts(conn, _STATUSES, "status")
        cost = await _one(conn, _COST)
    return Activity(
        workers=int(workers["workers"]),
        in_flight=int(workers["in_flight"]),
        completed=int(done["n"]),
        latency={k: float(done[k] or 0) for k in ("p50", "p95", "p99")},
        errors=errors,
        statuses=statuses,
        cost_usd=Decimal(cost["usd"]),
    )
