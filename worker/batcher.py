"""Coalesce single requests into batch calls: SQS batches, and group commits.

Callers ``await batcher.submit(entry)`` and get back the entry's own result
when the batch holding it has been sent; a per-entry failure is raised to that
caller only. Two ways to form batches:

* ``linger``    wait up to that long for a batch to fill (SQS deletes: fewer
                calls, and AWS bills per call);
* ``parallel``  no waiting: a batch leaves as soon as fewer than ``parallel``
                are in flight, and whatever arrives meanwhile goes together in
                the next one (Postgres group commit: one round trip at low
                load, large batches under load).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from opentelemetry.trace import SpanContext

from worker.observability.spans import group_commit
from worker.observability.tracing import current_context

__all__ = ["Batcher"]

T = TypeVar("T")
R = TypeVar("R")
Flush = Callable[[list[T]], Awaitable[list[Any]]]


class Batcher(Generic[T, R]):
    """Send entries in batches of at most ``size``.

    ``flush`` gets the entries and returns one item per entry: its result, or
    the exception that entry's caller should see. With a ``trace_name`` and
    tracing on, each flush is one span linked to the callers' spans.
    """

    def __init__(
        self,
        flush: Flush[T],
        *,
        size: int = 10,
        linger: float = 0.005,
        parallel: int | None = None,
        trace_name: str | None = None,
    ) -> None:
        self._flush = flush
        self._size = size
        self._linger = linger
        self._parallel = parallel
        self._trace_name = trace_name
        self._pending: list[tuple[T, asyncio.Future[R], SpanContext | None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, entry: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, future, current_context() if self._trace_name else None))
        self._schedule()
        return await future

    async def submit_together(self, entries: list[T]) -> list[R | BaseException]:
        """Send ``entries`` in one batch call (``size`` at a time, in order), after the
        batch already waiting: for entries whose order on the server matters (a FIFO
        group's messages). Returns each entry's result or exception, in order."""
        loop = asyncio.get_running_loop()
        self._start_flush()  # what waits leaves first, on its own
        batch = [
            (entry, loop.create_future(), current_context() if self._trace_name else None)
            for entry in entries
        ]
        for start in range(0, len(batch), self._size):
            self._spawn(batch[start : start + self._size])
        futures: list[asyncio.Future[R]] = [future for _, future, _ in batch]
        return await asyncio.gather(*futures, return_exceptions=True)

    def _schedule(self) -> None:
        if self._parallel is not None:
            self._pump()
        elif len(self._pending) >= self._size:
            self._start_flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._linger, self._start_flush)

    def _pump(self) -> None:
        """Group commit: start a sender if one may go; it takes its batch when it runs,
        so everything submitted in the same loop iteration travels together."""
        if self._pending and len(self._tasks) < (self._parallel or 1):
            self._spawn(None)

    def _start_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            batch, self._pending = self._pending[: self._size], self._pending[self._size :]
            self._spawn(batch)

    def _spawn(self, batch: list[tuple[T, asyncio.Future[R], SpanContext | None]] | None) -> None:
        task = asyncio.create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._parallel is not None:
            self._pump()

    async def _send(
        self, batch: list[tuple[T, asyncio.Future[R], SpanContext | None]] | None
    ) -> None:
        if batch is None:
            batch, self._pending = self._pending[: self._size], self._pending[self._size :]
            if not batch:
                return
        try:
            if self._trace_name is None:
                results = await self._flush([entry for entry, _, _ in batch])
            else:
                with group_commit(self._trace_name, [link for _, _, link in batch]):
                    results = await self._flush([entry for entry, _, _ in batch])
        except Exception as exc:  # every entry failed the same way
            results = [exc] * len(batch)
        for (_, future, _), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def drain(self) -> None:
        """Send what is pending and wait for every batch in flight."""
        while self._pending or self._tasks:
            if self._parallel is None:
                self._start_flush()
            else:
                self._pump()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
