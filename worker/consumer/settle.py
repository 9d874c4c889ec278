"""Settle a verdict: make it durable in Postgres first, then tell the queue.

* Succeeded   result + cost rows + status in one transaction, then delete;
* Retry       cost rows and 'retrying' recorded, visibility = the verdict's delay;
              when final the row says 'failed' and why, and the queue's
              RedrivePolicy takes the message to the DLQ (no redrive: moved);
* DeadLetter  recorded with a dead-letter row, copied to the DLQ, deleted;
* Postpone    lease released ('waiting'), a delayed copy replaces the message;
* Duplicate   deleted; Held: hidden until the other worker's lease ends;
* Unsaved     nothing could be written: visible again after a backoff.

A message whose body is an S3 pointer (``worker.queue.payloads``) has its object
deleted once the message is: after a completion or a duplicate only. A dead
letter keeps it (the DLQ copy points at it, for replay); the DLQ purge deletes it.

The caller shields settling from cancellation. A verdict whose store write
failed is never acknowledged: the message comes back (outcome ``unsaved``), and
the attempt's cost rows wait in the ``CostBuffer`` (spent is spent). Deletes do
not hold the handler's slot: the outcome is durable already.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable

import structlog
from opentelemetry.trace import SpanKind

from worker.config import ConsumerSettings
from worker.consumer.outcomes import Outcome, Work, dead_letter_row, reason_of
from worker.consumer.policy import retry_delay
from worker.consumer.verdicts import (
    DeadLetter,
    Duplicate,
    Held,
    Postpone,
    Retry,
    Succeeded,
    Unsaved,
    Verdict,
)
from worker.errors import StoreUnavailable, WorkerError
from worker.observability.spans import span
from worker.queue import QueueClient, Received, attributes_of
from worker.sends import MAX_DELAY
from worker.store import CostBuffer, Store

__all__ = ["Settler"]

log = structlog.get_logger("worker.consumer")
REJECTED = "cost rows rejected by the database"


class Settler:
    """Makes verdicts durable, store first, then queue."""

    def __init__(
        self,
        settings: ConsumerSettings,
        queue: QueueClient,
        store: Store,
        owner: str,
        costs: CostBuffer,
    ) -> None:
        self._settings = settings
        self._queue = queue
        self._store = store
        self._owner = owner
        self._costs = costs
        self._acks: set[asyncio.Task[bool]] = set()

    async def settle(self, verdict: Verdict) -> Outcome:
        match verdict:
            case Succeeded():
                return await self._succeed(verdict)
            case Retry():
                return await self._retry(verdict)
            case DeadLetter():
                return await self._dead_letter(verdict)
            case Postpone():
                return await self._postpone(verdict.work, verdict.seconds)
            case Duplicate():
                self._ack(verdict.message, settled=True)
                return "duplicate"
            case Held():
                hide = math.ceil(verdict.seconds) + 1
                await self._quiet(self._queue.set_visibility(verdict.message, hide))
                return "held"
            case Unsaved():
                return await self._unsaved(verdict.message)

    async def _succeed(self, verdict: Succeeded) -> Outcome:
        work = verdict.work
        try:
            _, saved = await self._store.complete(
                work.ref,
                self._owner,
                verdict.result,
                work.session.provider,
                work.session.calls,
                work.message.receive_count,
            )
        except StoreUnavailable as exc:
            log.warning("workflow_result_not_saved", error=str(exc))
            self._buffer_costs(work, str(exc))
            return await self._unsaved(work.message)
        if not saved:
            self._buffer_costs(work, REJECTED)
        log.info(
            "workflow_completed",
            calls=len(work.session.calls),
            cost_usd=float(sum(c.cost_usd for c in work.session.calls)),
        )
        self._ack(work.message, settled=True)
        return "completed"

    async def _retry(self, verdict: Retry) -> Outcome:
        work, exc, final = verdict.work, verdict.error, verdict.final
        message = work.message
        history = [
            {"receiveCount": message.receive_count, "errorCode": exc.code, "error": str(exc)[:300]}
        ]
        dead_letter = (
            dead_letter_row(self._queue.queue_name, message, work.ref, "exhausted", exc, history)
            if final
            else None
        )
        try:
            with span("postgres record_failure", kind=SpanKind.CLIENT):
                saved = await self._store.record_failure(
                    work.ref,
                    self._owner,
                    status="failed" if final else "retrying",
                    error_code=exc.code,
                    error_message=str(exc),
                    calls=work.session.calls,
                    receive_count=message.receive_count,
                    dead_letter=dead_letter,
                )
        except StoreUnavailable as store_exc:
            log.warning("workflow_failure_not_saved", error=str(store_exc))
            self._buffer_costs(work, str(store_exc))
            return await self._unsaved(message)
        if not saved:
            self._buffer_costs(work, REJECTED)
        if final and self._queue.max_receives_for(message.lane) is None:  # no redrive: move it
            await self._quiet(self._queue.move_to_dlq(message, reason_of("exhausted", exc)))
            return "dead_lettered"
        await self._quiet(self._queue.set_visibility(message, math.ceil(verdict.delay)))
        return "dead_lettered" if final else "retried"

    async def _dead_letter(self, verdict: DeadLetter) -> Outcome:
        message, work, exc = verdict.message, verdict.work, verdict.error
        row = dead_letter_row(
            self._queue.queue_name,
            message,
            work.ref if work else None,
            verdict.error_class,
            exc,
            [],
        )
        try:
            if work is None:
                await self._store.add_dead_letter(row)
            elif not await self._store.record_failure(
                work.ref,
                self._owner,
                status="failed",
                error_code=exc.code,
                error_message=str(exc),
                calls=work.session.calls,
                receive_count=message.receive_count,
                dead_letter=row,
            ):
                self._buffer_costs(work, REJECTED)
        except StoreUnavailable as store_exc:
            log.warning("dead_letter_not_saved", error=str(store_exc))
            if work is not None:
                self._buffer_costs(work, str(store_exc))
            return await self._unsaved(message)
        reason = reason_of(verdict.error_class, exc)
        if not await self._quiet(self._queue.move_to_dlq(message, reason)):
            return "unsaved"
        return "malformed" if verdict.error_class == "malformed" else "dead_lettered"

    async def _postpone(self, work: Work, seconds: float) -> Outcome:
        """Due later: a delayed copy replaces the message (receive counts do not climb)."""
        delay = max(1, min(MAX_DELAY, math.ceil(seconds)))
        log.info("workflow_postponed", due_in_s=round(seconds, 2), delay_s=delay)
        if work.session.calls:  # a rate-limit wait after some calls: spent is spent
            self._buffer_costs(work, "postponed")
        try:
            await self._store.release(work.ref, self._owner, status="waiting")
        except StoreUnavailable as exc:
            log.warning("lease_release_failed", error=str(exc))
        if not await self._replace_with_delayed_copy(work.message, delay):
            return "unsaved"
        return "postponed"

    async def requeue_later(self, message: Received, delay: int) -> Outcome:
        """Fairness: not now; a delayed copy goes to the back of the lane, then the original
        is deleted (receive counts do not climb; nothing is lost if we die in between)."""
        if not await self._replace_with_delayed_copy(message, delay):
            return "unsaved"
        return "requeued"

    async def release(self, work: Work) -> None:
        """Shutdown overtook the handler: the message is visible again at once."""
        log.info("workflow_released")
        if work.session.calls:
            self._buffer_costs(work, "released at shutdown")
        await self._quiet(self._queue.set_visibility(work.message, 0))
        try:
            await self._store.release(work.ref, self._owner)
        except StoreUnavailable as exc:
            log.warning("lease_release_failed", error=str(exc))

    async def drain(self) -> None:
        """Wait for the deletes still on their way (shutdown)."""
        if self._acks:
            await asyncio.gather(*self._acks, return_exceptions=True)

    async def _replace_with_delayed_copy(self, message: Received, delay: int) -> bool:
        """Send a copy due in ``delay`` s, then delete the original (its receive count does
        not climb; dying in between leaves a duplicate, never a loss). If the copy cannot be
        sent, hide the original for ``delay`` instead and say so (False). On a FIFO queue
        (no per-message delay there, and a copy would go to the back of its group) the
        message itself is hidden for ``delay``: its group waits with it, its order kept."""
        if self._queue.ordered(message):
            return await self._quiet(self._queue.set_visibility(message, delay))
        copy = self._queue.send(
            message.body, attributes_of(message), delay=delay, lane=message.lane
        )
        if not await self._quiet(copy):
            await self._quiet(self._queue.set_visibility(message, delay))
            return False
        self._ack(message)
        return True

    def _buffer_costs(self, work: Work, reason: str) -> None:
        """Spent is spent: the attempt's cost rows are kept until they can be written."""
        self._costs.add(work.ref, work.session.calls, work.message.receive_count, reason)
        work.session.calls = []

    async def _unsaved(self, message: Received) -> Outcome:
        """Nothing durable could be written: the message comes back after a backoff."""
        delay = retry_delay(
            message.receive_count,
            base=self._settings.retry_base_seconds,
            cap=self._settings.retry_max_seconds,
        )
        await self._quiet(self._queue.set_visibility(message, math.ceil(delay)))
        return "unsaved"

    def _ack(self, message: Received, *, settled: bool = False) -> None:
        """Delete, without holding the handler's slot while the delete batch fills: the
        outcome is durable already, and a lost delete is a redelivery the ledger answers.
        ``settled``: the workflow is done, so an S3 payload it points at goes too."""
        task = asyncio.create_task(self._delete(message, settled))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def _delete(self, message: Received, settled: bool) -> bool:
        deleted = await self._quiet(self._queue.delete(message))
        if deleted and settled:
            await self._quiet(self._queue.payloads.discard(message))
        return deleted

    async def _quiet(self, operation: Awaitable[object]) -> bool:
        """Queue bookkeeping that may fail: log it; SQS redelivers and the ledger dedups."""
        try:
            await operation
        except WorkerError as exc:
            log.warning("queue_operation_failed", error=str(exc))
            return False
        return True
