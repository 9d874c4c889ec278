"""The consumer loop: pollers, bounded in-flight work, heartbeat, shutdown.

Pollers ask the ``Capacity`` for room before each receive and ask SQS for no
more messages than there are free slots, so a saturated process stops
receiving (backpressure) instead of letting receive counts climb.

Shutdown, in order: stop receiving (the long poll is cancelled), release any
message received after the stop (visibility 0), let in-flight work finish up
to the grace period, cancel what is left (each cancelled handler releases its
message and lease), drain the batched deletes, close the resources.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import structlog

from worker.config import ConsumerSettings
from worker.consumer.fairness import Fairness, user_of
from worker.consumer.heartbeat import Heartbeat
from worker.consumer.limiter import Limiter
from worker.consumer.ordered import Ordered, runs_of
from worker.consumer.policy import retry_delay
from worker.consumer.processor import Processor
from worker.consumer.tuning import Tuner
from worker.errors import QueueUnavailable
from worker.observability.metrics import Metrics
from worker.queue import LaneName, QueueClient, Received

__all__ = ["Capacity", "Fleet", "FleetStats"]

log = structlog.get_logger("worker.fleet")
PRIORITY_RECHECK_SECONDS = 2
PRIORITY_EMPTY_SECONDS = 1.0
RECEIVE_LINGER = 0.1  # a saturated poller waits this long for a full batch of free slots


class Capacity:
    """A counter of free handler slots that pollers can take several of at once."""

    def __init__(self, slots: int) -> None:
        self.size = slots
        self._free = slots
        self._room = asyncio.Event()
        self._room.set()

    @property
    def in_use(self) -> int:
        return self.size - self._free

    async def take(self, most: int, linger: float = 0.0) -> int:
        """Up to ``most`` slots: at least one, waiting up to ``linger`` s for ``most``.

        A saturated fleet frees slots one by one; without the linger every free
        slot would be its own ReceiveMessage call (each one costs the queue
        server, and AWS bills it), instead of one call per batch.
        """
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while self._free < min(most, self.size):
            if self._free > 0 and deadline is None:
                deadline = loop.time() + linger
            if deadline is not None and self._free > 0 and loop.time() >= deadline:
                break
            self._room.clear()
            left = None if deadline is None or self._free <= 0 else deadline - loop.time()
            try:
                async with asyncio.timeout(left):
                    await self._room.wait()
            except TimeoutError:
                continue
        granted = min(most, self._free)
        self._free -= granted
        return granted

    def give(self, count: int = 1) -> None:
        self._free = min(self.size, self._free + count)
        if self._free > 0:
            self._room.set()

    def resize(self, slots: int) -> None:
        """A new limit: more room at once, or less as running handlers finish (free
        slots may go below zero meanwhile: nothing is taken until they are back)."""
        self._free += slots - self.size
        self.size = slots
        if self._free > 0:
            self._room.set()


@dataclass(slots=True)
class FleetStats:
    """What one run did: messages received, released at shutdown, and the count of
    each outcome word (``outcomes.Outcome``), read from the metrics at the end."""

    received: int = 0
    released: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def sentence(self) -> str:
        """``worker stopped after 12 messages: 10 completed, 2 dead_lettered.``"""
        counted = ", ".join(f"{n} {word}" for word, n in sorted(self.outcomes.items()) if n)
        released = f"; {self.released} released for another worker" if self.released else ""
        noun = "message" if self.received == 1 else "messages"
        done = counted or "nothing done"
        return f"worker stopped after {self.received} {noun}: {done}{released}."


class Fleet:
    """One process's worth of pollers and handlers."""

    def __init__(
        self,
        settings: ConsumerSettings,
        queue: QueueClient,
        processor: Processor,
        heartbeat: Heartbeat,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self.last_progress = time.monotonic()
        self._queue = queue
        self._processor = processor
        self._heartbeat = heartbeat
        limiter = Limiter(settings.concurrency_floor, settings.concurrency)
        self._capacity = Capacity(limiter.limit)
        self._fair = Fairness(limiter.limit, settings.user_share)
        self.tuner = Tuner(
            limiter,
            metrics,
            self._resize,
            interval=settings.concurrency_interval,
            memory_limit_mb=settings.memory_limit_mb,
        )
        self._ordered = Ordered(settings, queue, processor, heartbeat, self._fair)
        self._tasks: set[asyncio.Task[object]] = set()
        self._stopping = asyncio.Event()
        self._fatal: BaseException | None = None
        self._priority_quiet_until = 0.0
        self.stats = FleetStats()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        self._stopping.set()

    def _resize(self, limit: int) -> None:
        self._capacity.resize(limit)
        self._fair.resize(limit)

    def _tick(self) -> None:
        """Heartbeat tick: a saturated fleet waiting for its handlers is not hung."""
        if self._capacity.in_use >= self._capacity.size:
            self.last_progress = time.monotonic()

    async def live(self) -> tuple[bool, str]:
        """Liveness: the poll loop (or a saturated fleet's heartbeat) moved recently."""
        age = time.monotonic() - self.last_progress
        ok = age < self._settings.liveness_seconds
        return ok, f"last progress {age:.1f}s ago (limit {self._settings.liveness_seconds:g}s)"

    async def run(self, *, until_idle: bool = False, idle_checks: int = 2) -> FleetStats:
        """Consume until ``stop()`` (a signal) or, with ``until_idle``, until drained."""
        log.info(
            "fleet_started",
            concurrency=self._capacity.size,
            ceiling=self._settings.concurrency,
            floor=self._settings.concurrency_floor,
            pollers=self._settings.poller_count,
            max_receives=self._queue.max_receives or self._settings.max_receives,
        )
        beat = asyncio.create_task(self._heartbeat.run(self._tick), name="heartbeat")
        tune = asyncio.create_task(self.tuner.run(lambda: len(self._tasks)), name="limiter")
        pollers = [
            asyncio.create_task(self._poll(n), name=f"poller-{n}")
            for n in range(self._settings.poller_count)
        ]
        for poller in pollers:
            poller.add_done_callback(self._poller_done)
        watcher = asyncio.create_task(self._watch_idle(idle_checks)) if until_idle else None
        try:
            await self._stopping.wait()
        finally:
            log.info("fleet_stopping", in_flight=self.in_flight)
            for task in pollers:
                task.cancel()
            await asyncio.gather(*pollers, return_exceptions=True)
            await self._drain()
            for helper in (beat, tune, watcher):
                if helper is not None:
                    helper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await helper
        self.stats.outcomes = self._metrics.totals()
        log.info("fleet_stopped", **self.stats.outcomes)
        if self._fatal is not None:
            raise self._fatal
        return self.stats

    def _poller_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        self._fatal = self._fatal or task.exception()
        log.error("poller_failed", error=str(task.exception()))
        self.stop()

    async def _poll(self, number: int) -> None:
        failures = 0
        while not self._stopping.is_set():
            granted = await self._capacity.take(self._settings.batch_size, RECEIVE_LINGER)
            try:
                messages = await self._receive(granted)
            except QueueUnavailable as exc:
                self.last_progress = time.monotonic()
                self._capacity.give(granted)
                failures += 1
                delay = retry_delay(failures, base=0.5, cap=20.0)
                log.warning("receive_failed", poller=number, error=str(exc), retry_in_s=delay)
                await asyncio.sleep(delay)
                continue
            except BaseException:
                self._capacity.give(granted)
                raise
            failures = 0
            self.last_progress = time.monotonic()
            self._capacity.give(granted - len(messages))
            self.stats.received += len(messages)
            sent = [m.sent_at_ms for m in messages if m.sent_at_ms]
            self._metrics.message_received(len(messages), min(sent, default=0))
            if self._stopping.is_set():
                await self._release(messages)
                continue
            for run in runs_of(messages, self._queue.ordered):
                if self._queue.ordered(run[0]):  # a FIFO group's messages, in turn
                    self._track(self._ordered.run(run, self._stopping.is_set, self._capacity.give))
                    continue
                message = run[0]
                user = user_of(message)
                if self._fair.admit(user):
                    self._start(message, user)
                else:
                    self._track(self._processor.requeue_later(message, self._settings.fair_delay))

    async def _receive(self, count: int) -> list[Received]:
        """Weighted lanes: usually the priority lane first (a short poll), then the other.

        With probability FLEET_PRIORITY_WEIGHT the priority lane is asked first;
        otherwise the standard one, so a priority flood cannot starve it. The
        second ask long-polls, capped so the priority lane is looked at again soon.
        A priority lane found empty is not asked first again for a second: the
        empty short polls would otherwise double the calls on the queue server.
        """
        if not self._queue.has_priority:
            return await self._queue.receive(count, self._settings.wait_seconds)
        ask_priority = (
            random.random() < self._settings.priority_weight
            and time.monotonic() >= self._priority_quiet_until
        )
        first: LaneName = "priority" if ask_priority else "standard"
        second: LaneName = "standard" if first == "priority" else "priority"
        messages = await self._queue.receive(count, 0, first)
        if messages:
            return messages
        if first == "priority":
            self._priority_quiet_until = time.monotonic() + PRIORITY_EMPTY_SECONDS
        wait = min(self._settings.wait_seconds, PRIORITY_RECHECK_SECONDS)
        return await self._queue.receive(count, wait, second)

    def _start(self, message: Received, user: str) -> None:
        task: asyncio.Task[object] = asyncio.create_task(self._processor.process(message))
        self._tasks.add(task)
        self._metrics.in_flight.set(len(self._tasks))
        self.tuner.in_flight(len(self._tasks))
        task.add_done_callback(self._finished)
        task.add_done_callback(lambda _t: self._fair.done(user))

    def _track(self, work: Coroutine[Any, Any, object]) -> None:
        """A short bookkeeping task (a fairness requeue) that still holds its slot."""
        task: asyncio.Task[object] = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        self._metrics.in_flight.set(len(self._tasks))
        self.last_progress = time.monotonic()
        self._capacity.give()
        if not task.cancelled() and task.exception() is not None:
            log.error("processor_crashed", error=repr(task.exception()))

    async def _release(self, messages: list[Received]) -> None:
        self._capacity.give(len(messages))
        self.stats.released += len(messages)
        runs = runs_of(messages, self._queue.ordered)  # a FIFO run goes back in one call
        await asyncio.gather(*(self._queue.release_run(r) for r in runs), return_exceptions=True)

    async def _drain(self) -> None:
        await self._drain_handlers()
        await self._processor.drain()

    async def _drain_handlers(self) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=self._settings.shutdown_grace)
        if pending:
            log.warning("grace_period_over", cancelling=len(pending))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _watch_idle(self, checks: int) -> None:
        """Stop once the queue and this process have been empty for ``checks`` looks."""
        quiet = 0
        while quiet < checks:
            await asyncio.sleep(1.0)
            try:
                depth = await self._queue.total_depth()
            except QueueUnavailable:
                quiet = 0
                continue
            quiet = quiet + 1 if depth.total == 0 and not self._tasks else 0
        log.info("fleet_idle")
        self.stop()
