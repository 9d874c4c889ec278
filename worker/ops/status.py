"""What `fleet status` shows: queue depths per lane, workflows by status, cost today;
and one workflow in detail: its result, times, every LLM attempt and its error."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from worker.ops.shape import by_camel, usd
from worker.queue import QueueClient, QueueDepth
from worker.store import Store
from worker.store.reads import call_history, cost_since, workflow_counts, workflow_detail

__all__ = ["StatusReport", "collect_status", "workflow_report"]


def _depth(depth: QueueDepth) -> dict[str, int]:
    return {"visible": depth.visible, "inFlight": depth.in_flight, "delayed": depth.delayed}


@dataclass(slots=True)
class StatusReport:
    queue: QueueDepth
    dlq: QueueDepth
    workflows: dict[str, int]
    cost_today: list[dict[str, Any]] = field(default_factory=list)
    lanes: dict[str, tuple[QueueDepth, QueueDepth]] = field(default_factory=dict)
    queue_kind: str = "standard"  # "fifo": a FIFO fleet (docs/fifo.md)

    @property
    def cost_today_usd(self) -> Decimal:
        return sum((Decimal(row["cost_usd"] or 0) for row in self.cost_today), Decimal(0))

    def as_dict(self) -> dict[str, Any]:
        return {
            "queueKind": self.queue_kind,
            "queue": _depth(self.queue),
            "dlq": _depth(self.dlq),
            "lanes": {
                name: {"queue": _depth(work), "dlq": _depth(dead)}
                for name, (work, dead) in self.lanes.items()
            },
            "workflows": self.workflows,
            "costTodayUsd": usd(self.cost_today_usd),
            "costToday": [by_camel(row) for row in self.cost_today],
        }


async def collect_status(queue: QueueClient, store: Store) -> StatusReport:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    lanes: dict[str, tuple[QueueDepth, QueueDepth]] = {
        name: (await queue.depth(lane=name), await queue.depth(dlq=True, lane=name))
        for name in queue.lanes
    }
    return StatusReport(
        queue=_sum(work for work, _ in lanes.values()),
        dlq=_sum(dead for _, dead in lanes.values()),
        workflows=await workflow_counts(store),
        cost_today=await cost_since(store, today),
        lanes=lanes,
        queue_kind="fifo" if queue.fifo else "standard",
    )


def _sum(depths: Iterable[QueueDepth]) -> QueueDepth:
    listed = list(depths)
    return QueueDepth(
        sum(d.visible for d in listed),
        sum(d.in_flight for d in listed),
        sum(d.delayed for d in listed),
    )


TERMINAL_SENDS = frozenset({"sent", "failed", "superseded"})


async def workflow_report(store: Store, workflow_id: str) -> dict[str, Any] | None:
    """One workflow: its row and result, its LLM attempts with their errors, its
    children (campaign chunks), its sends and its cost."""
    detail = await workflow_detail(store, workflow_id)
    if detail is None:
        return None
    row, by_status = detail.row, detail.sends
    progress = row.get("progress") or {}
    calls = await call_history(store, workflow_id)
    report: dict[str, Any] = {
        "id": row["id"],
        "type": row["type"],
        "userId": row["user_id"],
        "status": row["status"],
        "priority": row["priority"],
        "attempts": row["attempts"],
        "provider": row["provider"],
        "errorCode": row["error_code"],
        "errorMessage": row["error_message"],
        "result": row["result"],
        "createdAt": row["created_at"].isoformat(),
        "updatedAt": row["updated_at"].isoformat(),
        "completedAt": row["completed_at"].isoformat() if row["completed_at"] else None,
        "progress": progress,
        "sends": by_status,
        "chunks": detail.chunks,
        "llmCalls": detail.llm_calls,
        "costUsd": usd(detail.cost_usd),
        "calls": [
            {**by_camel(call), "createdAt": call["created_at"].isoformat()} for call in calls
        ],
    }
    if row["type"] == "campaign_execution":
        recipients = int(progress.get("recipients", 0))
        settled = sum(n for status, n in by_status.items() if status in TERMINAL_SENDS)
        report["campaignComplete"] = (
            row["status"] == "completed" and recipients > 0 and settled >= recipients
        )
    return report
