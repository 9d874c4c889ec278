"""Process one message: parse, claim, dispatch, then the outcome of DESIGN.md.

* success    result + cost rows + status in one transaction, then delete;
* retryable  cost rows and 'retrying' recorded, visibility = backoff for this
             receive; on the last permitted receive the row says 'failed' and
             why, and the queue's RedrivePolicy takes the message to the DLQ;
* permanent  recorded with a dead-letter row, copied to the DLQ, deleted;
* malformed  dead-letter row with the reason, copied to the DLQ, deleted.

Bookkeeping is shielded from cancellation; a message whose outcome could not
be made durable is never deleted (it comes back after its visibility).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from handlers import REGISTRY, HandlerContext
from worker.config import Settings
from worker.consumer.heartbeat import Heartbeat
from worker.consumer.outcomes import Outcome, Work, dead_letter_row, parent_of, reason_of
from worker.consumer.policy import retry_delay
from worker.contract import (
    INTENT_TYPES,
    INTERNAL_TYPES,
    Envelope,
    Intent,
    encode_envelope,
    message_attributes,
    parse_message,
)
from worker.errors import (
    DeadlineExceeded,
    Deferred,
    MalformedMessage,
    PermanentError,
    RetryableError,
    StoreUnavailable,
    WorkerError,
)
from worker.observability.metrics import Metrics
from worker.providers import LLM
from worker.queue import QueueClient, Received, attributes_of
from worker.sends import MAX_DELAY, Sends
from worker.store import CostBuffer, Store, WorkflowRef

__all__ = ["Outcome", "Processor"]

log = structlog.get_logger("worker.consumer")


class Processor:
    """Turns one received message into exactly one outcome."""

    def __init__(
        self,
        settings: Settings,
        queue: QueueClient,
        store: Store,
        llm: LLM,
        heartbeat: Heartbeat,
        owner: str,
        costs: CostBuffer,
        sends: Sends | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._settings = settings
        self._queue = queue
        self._store = store
        self._llm = llm
        self._heartbeat = heartbeat
        self._owner = owner
        self._costs = costs
        self._sends = sends
        self._metrics = metrics or Metrics()
        self.oldest_sent_ms = 0
        self.counts: Counter[str] = Counter()
        self._acks: set[asyncio.Task[bool]] = set()

    @property
    def max_receives(self) -> int:
        return self._queue.max_receives or self._settings.max_receives

    def max_receives_of(self, message: Received) -> int:
        return self._queue.max_receives_for(message.lane) or self._settings.max_receives

    def note_sent_times(self, messages: list[Received]) -> None:
        """Remember the oldest message seen (ApproximateAgeOfOldestMessage)."""
        for message in messages:
            if message.sent_at_ms and (
                self.oldest_sent_ms == 0 or message.sent_at_ms < self.oldest_sent_ms
            ):
                self.oldest_sent_ms = message.sent_at_ms

    async def process(self, message: Received) -> Outcome:
        started = time.monotonic()
        outcome = await self._process(message)
        self.counts[outcome] += 1
        intent = message.attributes.get("intentType", "")
        self._metrics.workflow(
            intent if intent in INTENT_TYPES else "unknown", outcome, time.monotonic() - started
        )
        return outcome

    async def _process(self, message: Received) -> Outcome:
        try:
            envelope = parse_message(message.body, message.identity)
        except MalformedMessage as exc:
            log.warning(
                "message_malformed",
                message_id=message.identity,
                error_code=exc.code,
                error=str(exc),
            )
            return await self._dead_letter(message, None, "malformed", exc)
        intent = envelope.intent
        ref = WorkflowRef(
            id=str(envelope.workflow_id),
            type=intent.type,
            user_id=intent.user_id,
            priority=intent.priority,
            trace_id=envelope.trace_id,
            parent_id=parent_of(intent) if intent.type in INTERNAL_TYPES else None,
        )
        with structlog.contextvars.bound_contextvars(
            workflow_id=ref.id,
            trace_id=ref.trace_id,
            intent_type=ref.type,
            receive_count=message.receive_count,
        ):
            try:
                claim = await self._store.claim(ref, self._owner, self._settings.lease)
            except StoreUnavailable as exc:
                log.warning("workflow_claim_failed", error=str(exc))
                return await self._defer(message)
            if claim.outcome == "completed":
                log.info("workflow_duplicate_delivery")
                await self._ack(message)
                return "duplicate"
            if claim.outcome == "held":
                await self._quiet(
                    self._queue.set_visibility(message, math.ceil(claim.seconds_left) + 1)
                )
                return "held"
            session = self._llm.session(
                intent.type,
                force_provider=intent.force_provider,
                deadline=time.monotonic() + self._settings.workflow_timeout,
                use_cache=intent.data.get("cache", True) is not False,
            )
            work = Work(message, envelope, ref, session)
            self._heartbeat.track(message, ref.id)
            try:
                return await self._run(work)
            finally:
                self._heartbeat.untrack(message)

    async def _run(self, work: Work) -> Outcome:
        handler = REGISTRY[work.ref.type]
        context = HandlerContext(
            workflow_id=work.ref.id,
            llm=work.session,
            sends=self._sends,
            spawn=self._spawn,
            campaign_concurrency=self._settings.campaign_concurrency,
            campaign_chunk=self._settings.campaign_chunk,
        )
        log.info("workflow_started", user_id=work.ref.user_id, priority=work.ref.priority)
        try:
            async with asyncio.timeout(self._settings.workflow_timeout):
                result = await handler(work.envelope.intent, context)
        except TimeoutError:
            late = DeadlineExceeded(
                f"workflow ran past FLEET_WORKFLOW_TIMEOUT ({self._settings.workflow_timeout:g}s)"
            )
            return await asyncio.shield(self._retry(work, late))
        except asyncio.CancelledError:
            await asyncio.shield(self._release(work))
            raise
        except Deferred as exc:
            return await asyncio.shield(self._postpone(work, exc.seconds))
        except MalformedMessage as exc:
            log.warning("workflow_error", error_code=exc.code, error=str(exc), outcome="malformed")
            return await asyncio.shield(self._dead_letter(work.message, work, "malformed", exc))
        except PermanentError as exc:
            log.warning("workflow_error", error_code=exc.code, error=str(exc), outcome="permanent")
            return await asyncio.shield(self._dead_letter(work.message, work, "permanent", exc))
        except RetryableError as exc:
            return await asyncio.shield(self._retry(work, exc))
        except Exception as exc:  # a handler bug: retried, then the DLQ says what it was
            log.exception("workflow_error", error_code="unknown", outcome="retry")
            error = RetryableError(f"{type(exc).__name__}: {exc}", code="unknown")
            return await asyncio.shield(self._retry(work, error))
        return await asyncio.shield(self._succeed(work, result))

    async def _succeed(self, work: Work, result: dict[str, Any]) -> Outcome:
        try:
            _, saved = await self._store.complete(
                work.ref,
                self._owner,
                result,
                work.session.provider,
                work.session.calls,
                work.message.receive_count,
            )
        except StoreUnavailable as exc:
            log.warning("workflow_result_not_saved", error=str(exc))
            self._buffer_costs(work, str(exc))
            return await self._defer(work.message)
        if not saved:
            self._buffer_costs(work, "cost rows rejected by the database")
        log.info(
            "workflow_completed",
            calls=len(work.session.calls),
            cost_usd=float(sum(c.cost_usd for c in work.session.calls)),
        )
        await self._ack(work.message)
        return "completed"

    async def _retry(self, work: Work, exc: WorkerError) -> Outcome:
        message = work.message
        final = message.receive_count >= self.max_receives_of(message)
        history = [
            {"receiveCount": message.receive_count, "errorCode": exc.code, "error": str(exc)[:300]}
        ]
        dead_letter = (
            dead_letter_row(self._queue.queue_name, message, work.ref, "exhausted", exc, history)
            if final
            else None
        )
        delay = (
            0
            if final
            else retry_delay(
                message.receive_count,
                base=self._settings.retry_base_seconds,
                cap=self._settings.retry_max_seconds,
            )
        )
        log.warning(
            "workflow_error",
            error_code=exc.code,
            error=str(exc),
            outcome="exhausted" if final else "retry",
            retry_in_s=round(delay, 2),
        )
        try:
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
            return await self._defer(message)
        if not saved:
            self._buffer_costs(work, "cost rows rejected by the database")
        if final and self._queue.max_receives_for(message.lane) is None:  # no redrive: move it
            await self._quiet(self._queue.move_to_dlq(message, reason_of("exhausted", exc)))
            return "dead_lettered"
        await self._quiet(self._queue.set_visibility(message, math.ceil(delay)))
        return "dead_lettered" if final else "retried"

    async def _dead_letter(
        self,
        message: Received,
        work: Work | None,
        error_class: Literal["malformed", "permanent"],
        exc: WorkerError,
    ) -> Outcome:
        row = dead_letter_row(
            self._queue.queue_name, message, work.ref if work else None, error_class, exc, []
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
                self._buffer_costs(work, "cost rows rejected by the database")
        except StoreUnavailable as store_exc:
            log.warning("dead_letter_not_saved", error=str(store_exc))
            if work is not None:
                self._buffer_costs(work, str(store_exc))
            return await self._defer(message)
        moved = await self._quiet(self._queue.move_to_dlq(message, reason_of(error_class, exc)))
        if not moved:
            return "deferred"
        return "malformed" if error_class == "malformed" else "dead_lettered"

    async def _spawn(self, intent: Intent, workflow_id: uuid.UUID) -> None:
        """Start a child workflow (a campaign chunk): a new message on the work queue."""
        envelope = Envelope(workflow_id=workflow_id, intent=intent, enqueued_at=datetime.now(UTC))
        await self._queue.send(
            encode_envelope(envelope, self._settings.max_message_bytes),
            message_attributes(envelope),
            lane=self._queue.lane_for(intent.priority),
        )

    async def requeue_later(self, message: Received, delay: int) -> Outcome:
        """Fairness: not now; a delayed copy goes to the back of the lane, then the original
        is deleted (receive counts do not climb; nothing is lost if we die in between)."""
        if not await self._replace_with_delayed_copy(message, delay):
            return "deferred"
        self.counts["requeued"] += 1
        return "requeued"

    async def _postpone(self, work: Work, seconds: float) -> Outcome:
        """Due later: a delayed copy replaces the message (receive counts do not climb)."""
        delay = max(1, min(MAX_DELAY, math.ceil(seconds)))
        log.info("workflow_postponed", due_in_s=round(seconds, 2), delay_s=delay)
        try:
            await self._store.release(work.ref, self._owner, status="waiting")
        except StoreUnavailable as exc:
            log.warning("lease_release_failed", error=str(exc))
        if not await self._replace_with_delayed_copy(work.message, delay):
            return "deferred"
        return "postponed"

    async def _replace_with_delayed_copy(self, message: Received, delay: int) -> bool:
        """Send a copy due in ``delay`` s, then delete the original (its receive count does
        not climb; dying in between leaves a duplicate, never a loss). If the copy cannot be
        sent, hide the original for ``delay`` instead and say so (False)."""
        copy = self._queue.send(
            message.body, attributes_of(message), delay=delay, lane=message.lane
        )
        if not await self._quiet(copy):
            await self._quiet(self._queue.set_visibility(message, delay))
            return False
        await self._ack(message)
        return True

    def _buffer_costs(self, work: Work, reason: str) -> None:
        """Spent is spent: the attempt's cost rows are kept until they can be written."""
        self._costs.add(work.ref, work.session.calls, work.message.receive_count, reason)
        work.session.calls = []

    async def _release(self, work: Work) -> None:
        """Shutdown overtook the handler: the message is visible again at once."""
        log.info("workflow_released")
        if work.session.calls:
            self._buffer_costs(work, "released at shutdown")
        await self._quiet(self._queue.set_visibility(work.message, 0))
        try:
            await self._store.release(work.ref, self._owner)
        except StoreUnavailable as exc:
            log.warning("lease_release_failed", error=str(exc))

    async def _defer(self, message: Received) -> Outcome:
        """Nothing durable could be written: try again after a backoff."""
        delay = retry_delay(
            message.receive_count,
            base=self._settings.retry_base_seconds,
            cap=self._settings.retry_max_seconds,
        )
        await self._quiet(self._queue.set_visibility(message, math.ceil(delay)))
        return "deferred"

    async def _ack(self, message: Received) -> None:
        """Delete, without holding the handler's slot while the delete batch fills: the
        outcome is durable already, and a lost delete is a redelivery the ledger answers."""
        task = asyncio.create_task(self._quiet(self._queue.delete(message)))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def settle(self) -> None:
        """Wait for the deletes still on their way (shutdown)."""
        if self._acks:
            await asyncio.gather(*self._acks, return_exceptions=True)

    async def _quiet(self, operation: Any) -> bool:
        """Queue bookkeeping that may fail: log it; SQS redelivers and the ledger dedups."""
        try:
            await operation
        except WorkerError as exc:
            log.warning("queue_operation_failed", error=str(exc))
            return False
        return True
