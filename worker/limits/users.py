"""Per-user rate limits: at most ``limit`` workflow starts per ``window`` per user,
fleet-wide (default off).

A GCRA in one row per user (``RateTable.user_start``): starts are spaced
``window/limit`` apart, ``burst`` of them may go back to back. A workflow over the
limit is not failed: it books the next free start slot, and the consumer postpones
its message to that slot (a delayed copy; the receive count does not climb). When
it comes back it starts at its slot without being charged again; a slot less than
a second away is waited out in place. Over any window a user starts at most
``limit + burst`` workflows.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import structlog

from worker.store.limits import RateTable

__all__ = ["UserLimits"]

log = structlog.get_logger("worker.limits")


@dataclass(frozen=True, slots=True)
class UserLimits:
    table: RateTable
    limit: int
    window: float = 60.0
    burst: int = 1

    @property
    def interval(self) -> float:
        return self.window / self.limit

    async def admit(self, workflow_id: str, user_id: str) -> int:
        """0 when the workflow may start now (after a wait under a second); else the
        whole seconds to postpone it by (it comes back just before its slot)."""
        tolerance = (self.burst - 1) * self.interval
        wait = await self.table.user_start(workflow_id, user_id, self.interval, tolerance)
        if wait < 1.0:
            if wait > 0:
                await asyncio.sleep(wait)
            return 0
        log.info("user_rate_limited", user_id=user_id, wait_s=round(wait, 2))
        return math.floor(wait)
