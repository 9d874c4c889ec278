"""What one run of the fleet did, for the demo and the benchmark: outcomes since a
time, and completion timings of a known set of workflows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from worker.store.pool import Connects

__all__ = ["RunOutcome", "Timing", "completed_count", "run_outcome", "timings"]

_STATUSES = """
SELECT status, count(*) AS n, count(*) FILTER (WHERE attempts > 1) AS retried
  FROM workflows WHERE updated_at >= %s AND type <> ALL(%s) GROUP BY status
"""

_SENDS = "SELECT status, count(*) AS n FROM onlyfans_sends WHERE created_at >= %s GROUP BY status"

_COMPLETED = "SELECT count(*) AS n FROM workflows WHERE id = ANY(%s) AND status = 'completed'"

_TIMINGS = """
SELECT w.id, EXTRACT(EPOCH FROM w.completed_at)::float8 AS done,
       EXTRACT(EPOCH FROM w.completed_at - w.created_at)::float8 AS inside,
       (coalesce(sum(c.duration_ms), 0) / 1000.0)::float8 AS llm
  FROM workflows w LEFT JOIN llm_calls c ON c.workflow_id = w.id
 WHERE w.id = ANY(%s) AND w.completed_at IS NOT NULL GROUP BY w.id
"""


@dataclass(frozen=True, slots=True)
class RunOutcome:
    statuses: dict[str, int]  # workflows touched since, by status (internal steps left out)
    retried: int  # of those, how many took more than one attempt
    sends: dict[str, int]  # sends created since, by status


@dataclass(frozen=True, slots=True)
class Timing:
    id: str
    done: float  # epoch seconds of completion
    inside: float  # seconds from claim to completion
    llm: float  # seconds spent in LLM calls


async def run_outcome(db: Connects, since: datetime, leave_out: Iterable[str] = ()) -> RunOutcome:
    """Workflows (but those of the types ``leave_out``) and sends since ``since``."""
    async with db.connection() as conn:
        rows = await (await conn.execute(_STATUSES, (since, list(leave_out)))).fetchall()
        sends = await (await conn.execute(_SENDS, (since,))).fetchall()
    return RunOutcome(
        {str(r["status"]): int(r["n"]) for r in rows},
        sum(int(r["retried"]) for r in rows),
        {str(r["status"]): int(r["n"]) for r in sends},
    )


async def completed_count(db: Connects, ids: Sequence[str]) -> int:
    """How many of the workflows ``ids`` are completed."""
    async with db.connection() as conn:
        row = await (await conn.execute(_COMPLETED, (list(ids),))).fetchone()
    return int(row["n"]) if row else 0


async def timings(db: Connects, ids: Sequence[str]) -> list[Timing]:
    """When each completed workflow of ``ids`` finished, and where its time went."""
    async with db.connection() as conn:
        rows = await (await conn.execute(_TIMINGS, (list(ids),))).fetchall()
    return [
        Timing(str(r["id"]), float(r["done"]), float(r["inside"]), float(r["llm"])) for r in rows
    ]
