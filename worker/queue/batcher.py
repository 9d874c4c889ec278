"""Coalesce single requests into SQS batch calls (up to 10 entries).

Callers ``await batcher.submit(entry)`` and get back when the batch holding
their entry has been sent; a per-entry failure is raised to that caller only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["Batcher"]

T = TypeVar("T")
Flush = Callable[[list[T]], Awaitable[list[BaseException | None]]]


class Batcher(Generic[T]):
    """Send entries in batches of ``size``, waiting at most ``linger`` seconds to fill one."""

    def __init__(self, flush: Flush[T], *, size: int = 10, linger: float = 0.005) -> None:
        self._flush = flush
        self._size = size
        self._linger = linger
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, entry: T) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((entry, future))
        if len(self._pending) >= self._size:
            self._start_flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._linger, self._start_flush)
        await future

    def _start_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            batch, self._pending = self._pending[: self._size], self._pending[self._size :]
            task = asyncio.create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[T, asyncio.Future[None]]]) -> None:
        try:
            results = await self._flush([entry for entry, _ in batch])
        except Exception as exc:  # every entry failed the same way
            results = [exc] * len(batch)
        for (_, future), error in zip(batch, results, strict=True):
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    async def drain(self) -> None:
        """Send what is pending and wait for every batch in flight."""
        self._start_flush()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
