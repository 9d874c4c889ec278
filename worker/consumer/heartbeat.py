"""Keep in-flight messages invisible and their leases alive while handlers run.

One loop for the whole process: every tick it extends, in batches, the
messages whose last extension is older than the heartbeat interval, and the
matching workflow leases in one UPDATE. A failed extension is logged, never
fatal: the lease check at completion keeps effects single.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from worker.errors import WorkerError
from worker.observability.metrics import Metrics
from worker.queue import QueueClient, Received
from worker.store import Store

__all__ = ["Heartbeat"]

log = structlog.get_logger("worker.heartbeat")


@dataclass(slots=True)
class _Tracked:
    message: Received
    workflow_id: str
    extended_at: float
    seconds: int = 0  # the visibility each extension sets; 0: the visibility timeout


class Heartbeat:
    def __init__(
        self,
        queue: QueueClient,
        store: Store,
        *,
        owner: str,
        interval: float,
        visibility_timeout: int,
        lease_seconds: float,
        metrics: Metrics | None = None,
    ) -> None:
        self._queue = queue
        self._store = store
        self._owner = owner
        self._interval = interval
        self._visibility = visibility_timeout
        self._lease = lease_seconds
        self._tracked: dict[str, _Tracked] = {}
        self.extensions = 0
        self.failures = 0
        self._metrics = metrics

    def track(self, message: Received, workflow_id: str) -> None:
        self._tracked[message.receipt_handle] = _Tracked(message, workflow_id, time.monotonic())

    def hold(self, message: Received, seconds: int) -> None:
        """Keep a received message invisible while it waits its turn (a FIFO group's
        later messages), ``seconds`` at a time; it has no lease yet."""
        self._tracked[message.receipt_handle] = _Tracked(message, "", time.monotonic(), seconds)

    def untrack(self, message: Received) -> None:
        self._tracked.pop(message.receipt_handle, None)

    async def run(self, on_tick: Callable[[], None] | None = None) -> None:
        """Beat until cancelled, calling ``on_tick`` (the fleet's liveness) each tick."""
        tick = min(1.0, self._interval / 2)
        while True:
            await asyncio.sleep(tick)
            if on_tick is not None:
                on_tick()
            await self.beat()

    async def beat(self) -> None:
        now = time.monotonic()
        due = [t for t in self._tracked.values() if now - t.extended_at >= self._interval]
        if not due:
            return
        results = await asyncio.gather(
            *(self._queue.extend_visibility(t.message, t.seconds or self._visibility) for t in due),
            return_exceptions=True,
        )
        for tracked, result in zip(due, results, strict=True):
            if self._metrics is not None:
                self._metrics.extension(not isinstance(result, BaseException))
            if isinstance(result, BaseException):
                self.failures += 1
                log.warning(
                    "visibility_extension_failed",
                    workflow_id=tracked.workflow_id,
                    error=str(result),
                )
            else:
                tracked.extended_at = now
                self.extensions += 1
        try:
            leases = [t.workflow_id for t in due if t.workflow_id]
            if leases:
                await self._store.extend_leases(leases, self._owner, self._lease)
        except WorkerError as exc:
            log.warning("lease_extension_failed", error=str(exc), count=len(due))
