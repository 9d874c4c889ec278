"""Cost rows that could not be written with their workflow, retried until they land.

A failed cost write never fails a workflow: the rows wait here, the failure is
logged as ``cost_tracking_failed``, and a background loop (and the shutdown
flush) writes them when the database answers again.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

import structlog

from worker.errors import WorkerError
from worker.store.records import CallRecord, WorkflowRef
from worker.store.repository import Store

__all__ = ["CostBuffer"]

log = structlog.get_logger("worker.costs")


class CostBuffer:
    def __init__(self, store: Store, *, interval: float = 2.0) -> None:
        self._store = store
        self._interval = interval
        self._pending: deque[tuple[WorkflowRef, list[CallRecord], int]] = deque()
        self.written = 0

    @property
    def pending(self) -> int:
        return sum(len(calls) for _, calls, _ in self._pending)

    def add(
        self, ref: WorkflowRef, calls: Sequence[CallRecord], receive_count: int, reason: str
    ) -> None:
        if not calls:
            return
        self._pending.append((ref, list(calls), receive_count))
        log.warning(
            "cost_tracking_failed",
            workflow_id=ref.id,
            rows=len(calls),
            error=reason,
            buffered=self.pending,
        )

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def flush(self) -> bool:
        """Write what is pending; True when nothing is left."""
        while self._pending:
            ref, calls, receive_count = self._pending[0]
            try:
                await self._store.insert_calls(ref, calls, receive_count)
            except WorkerError as exc:
                log.warning("cost_tracking_failed", error=str(exc), buffered=self.pending)
                return False
            self._pending.popleft()
            self.written += len(calls)
        return True
