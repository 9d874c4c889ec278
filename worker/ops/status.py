"""What `fleet status` shows: queue depths, workflows by status, cost today."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from worker.queue import QueueClient, QueueDepth
from worker.store import Store

__all__ = ["StatusReport", "collect_status"]


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
        queue=await queue.depth(),
        dlq=await queue.depth(dlq=True),
        workflows=await store.status_counts(),
        cost_today=await store.cost_since(today),
    )
