"""What `fleet status` shows: queue depths, workflows by status, cost today."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from worker.queue import QueueClient, QueueDepth
from worker.store import Store
from worker.store.reads import cost_since, workflow_counts, workflow_detail

__all__ = ["StatusReport", "collect_status", "workflow_report"]


@dataclass(slots=True)
class StatusReport:
    queue: QueueDepth
    dlq: QueueDepth
    workflows: dict[str, int]
    cost_today: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cost_today_usd(self) -> Decimal:
        return sum((Decimal(row["cost_usd"] or 0) for row in self.cost_today), Decimal(0))

    def as_dict(self) -> dict[str, Any]:
        return {
            "queue": {
                "visible": self.queue.visible,
                "inFlight": self.queue.in_flight,
                "delayed": self.queue.delayed,
            },
            "dlq": {
                "visible": self.dlq.visible,
                "inFlight": self.dlq.in_flight,
                "delayed": self.dlq.delayed,
            },
            "workflows": self.workflows,
            "costTodayUsd": float(self.cost_today_usd),
            "costToday": [
                {k: (float(v) if isinstance(v, Decimal) else v) for k, v in row.items()}
                for row in self.cost_today
            ],
        }


async def collect_status(queue: QueueClient, store: Store) -> StatusReport:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return StatusReport(
        queue=await queue.total_depth(),
        dlq=await queue.total_depth(dlq=True),
        workflows=await workflow_counts(store),
        cost_today=await cost_since(store, today),
    )


TERMINAL_SENDS = frozenset({"sent", "failed", "superseded"})


async def workflow_report(store: Store, workflow_id: str) -> dict[str, Any] | None:
    """One workflow: its row, its children (campaign chunks), its sends and its cost."""
    detail = await workflow_detail(store, workflow_id)
    if detail is None:
        return None
    row, by_status = detail.row, detail.sends
    progress = row.get("progress") or {}
    report: dict[str, Any] = {
        "id": row["id"],
        "type": row["type"],
        "userId": row["user_id"],
        "status": row["status"],
        "attempts": row["attempts"],
        "provider": row["provider"],
        "errorCode": row["error_code"],
        "errorMessage": row["error_message"],
        "progress": progress,
        "sends": by_status,
        "chunks": detail.chunks,
        "llmCalls": detail.llm_calls,
        "costUsd": float(detail.cost_usd),
        "updatedAt": row["updated_at"].isoformat(),
    }
    if row["type"] == "campaign_execution":
        recipients = int(progress.get("recipients", 0))
        settled = sum(n for status, n in by_status.items() if status in TERMINAL_SENDS)
        report["campaignComplete"] = (
            row["status"] == "completed" and recipients > 0 and settled >= recipients
        )
    return report
