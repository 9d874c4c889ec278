"""Per-user rate limits: at most ``limit`` workflow starts per ``window`` per user,
fleet-wide (default off).

A GCRA in one row per user (``RateTable.user_start``): starts are spaced
``window/limit`` apart, ``burst`` of them may go back to back. A workflow over the
limit is not failed: it books the next free start slot, and the consumer postpones
its message to about ``EARLY`` seconds before that slot (a delayed copy; the
receive count does not climb). When it comes back it waits out the rest in place
(the heartbeat keeps it) and starts at its slot, without being charged again;
a slot less than ``IN_PLACE`` seconds away is waited out in place at once. So a
queue that redelivers a little late does not bunch starts up, and over any
window a user starts at most ``limit + burst`` workflows.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import structlog

from worker.store.limits import RateTable

__all__ = ["EARLY", "IN_PLACE", "UserLimits"]

log = structlog.get_logger("worker.limits")
IN_PLACE = 4.0  # seconds: a start slot nearer than this is waited for in place
EARLY = 3.0  # seconds: a postponed message comes back this much before its slot


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
        """0 when the workflow may start now (after a wait in place under ``IN_PLACE``
        seconds); else the whole seconds to postpone it by (it comes back early)."""
        tolerance = (self.burst - 1) * self.interval
        wait = await self.table.user_start(workflow_id, user_id, self.interval, tolerance, IN_PLACE)
        if wait < IN_PLACE:
            if wait > 0:
                await asyncio.sleep(wait)
            return 0
        log.info("user_rate_limited", user_id=user_id, wait_s=round(wait, 2))
        return max(1, math.floor(wait - EARLY))
