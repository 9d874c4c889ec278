"""FIFO order inside one process: a group's messages of one receive batch, in turn.

SQS hands out a FIFO group's next messages only once the ones in flight are gone, but
one receive can bring several messages of the same group. The fleet runs those one
after another in one task (different groups, and standard-queue messages, still run
side by side), and stops a group's run at the first message that does not end:

- ``completed``/``duplicate``/``dead_lettered``/``malformed`` with the message gone
  from the queue: the next one starts (a poison message leaves for the DLQ and the rest
  of its group goes on);
- anything else (``retried``, ``held``, ``unsaved``, ``released``, a fairness turn-away,
  or a last failure left for SQS's redrive to take): that message is still on the
  queue. The visibility change that put it back (``QueueClient.set_visibility``) takes
  the waiting rest of the run along in the same batch call, hidden one second less (the
  head at least 2 s): SQS keeps the group locked while its head is in flight, and
  LocalStack, which unlocks a group as soon as any message of it is visible again, gets
  the whole run back at once, head first. Released (shutdown, a cancelled run): head and
  rest in one call, all hidden a second, so they come back together, head first.

Messages waiting their turn are kept invisible by the heartbeat, each extension a
heartbeat interval shorter than the running message's, so a killed process's run
comes back together, head first.
Fairness holds on FIFO too, without copies: a turned-away message is hidden for
``FLEET_FAIR_DELAY`` (its group with it), unless it is on its last receive, which a
turn-away would spend (SQS would dead-letter it unrun).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from worker.config import ConsumerSettings
from worker.consumer.fairness import Fairness, user_of
from worker.consumer.heartbeat import Heartbeat
from worker.consumer.outcomes import Outcome
from worker.consumer.processor import Processor
from worker.queue import QueueClient, Received

__all__ = ["GOES_ON", "Ordered", "runs_of"]

GOES_ON: frozenset[Outcome] = frozenset({"completed", "duplicate", "dead_lettered", "malformed"})


def runs_of(messages: list[Received], ordered: Callable[[Received], bool]) -> list[list[Received]]:
    """A receive batch as runs: each FIFO group's messages in receive order (SQS's order
    within a group), every other message alone."""
    runs: list[list[Received]] = []
    by_group: dict[str, list[Received]] = {}
    for message in messages:
        if not ordered(message) or message.group_id is None:
            runs.append([message])
        elif message.group_id in by_group:
            by_group[message.group_id].append(message)
        else:
            by_group[message.group_id] = run = [message]
            runs.append(run)
    return runs


class Ordered:
    """Runs one FIFO group's messages of a batch in order (see the module's text)."""

    def __init__(
        self,
        settings: ConsumerSettings,
        queue: QueueClient,
        processor: Processor,
        heartbeat: Heartbeat,
        fairness: Fairness,
    ) -> None:
        self._settings = settings
        self._queue = queue
        self._processor = processor
        self._heartbeat = heartbeat
        self._fair = fairness

    async def run(
        self, run: list[Received], stopping: Callable[[], bool], give: Callable[[], None]
    ) -> None:
        """Process ``run`` in order. A run is one handler at a time, so it keeps one slot:
        ``give`` frees the others at once (the fleet frees the last when the task ends).
        Waiting messages cost no handler; SQS bounds them (ten per locked group)."""
        for waiting in run[1:]:
            self._heartbeat.hold(waiting, self._waiting_seconds())
            give()
        index = 0
        try:
            for index, message in enumerate(run):
                self._heartbeat.untrack(message)
                if stopping():
                    await self._release(run[index:])
                    return
                self._queue.hold_behind(message, run[index + 1 :])
                outcome = await self._one(message)
                behind = self._queue.release_behind(message)
                hidden = self._queue.hidden_for(message)
                if outcome not in GOES_ON or hidden is not None:  # still on the queue
                    if behind:  # no visibility change took the rest along: it failed
                        await self._put_back(behind, self._visibility_left())
                    return
        except asyncio.CancelledError:
            behind = self._queue.release_behind(run[index])
            if behind is None:  # released with its run (``Settler.release``), or run alone
                self._queue.hidden_for(run[index])
            else:  # cancelled before its verdict: head and run go back in one call
                await asyncio.shield(self._release([run[index], *behind]))
            raise
        finally:
            for waiting in run:
                self._heartbeat.untrack(waiting)

    async def _one(self, message: Received) -> Outcome:
        """Process (or turn away) one message."""
        user = user_of(message)
        last = message.receive_count >= self._max_receives(message) - 1
        if not self._fair.admit(user, force=last):
            return await self._processor.requeue_later(message, self._settings.fair_delay)
        try:
            return await self._processor.process(message)
        finally:
            self._fair.done(user)

    def _max_receives(self, message: Received) -> int:
        return self._queue.max_receives_for(message.lane) or self._settings.max_receives

    def _waiting_seconds(self) -> int:
        """A waiting message's extension: shorter than the running one's by more than a
        heartbeat interval, so were this process to die, its run would come back to the
        queue no later than the message before it."""
        interval = self._settings.heartbeat_interval
        return max(1, int(self._settings.visibility_timeout - interval - 1))

    def _visibility_left(self) -> int:
        """The rest's hide after a head whose visibility change failed: that head stays
        hidden up to the visibility timeout; the rest a second less."""
        return max(1, self._settings.visibility_timeout - 1)

    async def _release(self, run: list[Received]) -> None:
        """Give back a run not started (shutdown): its head released with the rest behind
        it, in one call (``QueueClient.release_run``)."""
        for message in run:
            self._heartbeat.untrack(message)
        with contextlib.suppress(Exception):
            await self._queue.release_run(run)

    async def _put_back(self, rest: list[Received], seconds: int) -> None:
        """Hide the rest ``seconds`` (after a head whose visibility change failed)."""
        for message in rest:
            self._heartbeat.untrack(message)
        await asyncio.gather(
            *(self._queue.set_visibility(m, seconds) for m in rest), return_exceptions=True
        )
        for message in rest:
            self._queue.hidden_for(message)
