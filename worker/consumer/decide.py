"""Decide what happens to a message: load (an S3 pointer body's payload), decode,
resolve the handler, claim, run.

Every step returns a verdict VALUE (``verdicts``) instead of acting on the queue
or the store's outcome tables; ``settle`` makes the verdict durable. A handler's
exception becomes a verdict through the one table in ``verdicts.RULINGS``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
import uuid
from datetime import UTC, datetime
from typing import Literal

import structlog

from handlers import HandlerContext, handler_for
from worker.config import ConsumerSettings, SpendSettings
from worker.consumer.outcomes import Parsed, Work, parent_of
from worker.consumer.policy import retry_delay
from worker.consumer.spending import build_variants
from worker.consumer.verdicts import (
    DeadLetter,
    Duplicate,
    Held,
    Postpone,
    Retry,
    Succeeded,
    Unsaved,
    Verdict,
    error_of,
    ruling_of,
)
from worker.contract import INTERNAL_TYPES, Envelope, Intent, parse_message
from worker.contract.signing import SIGNATURE_ATTRIBUTE, verify
from worker.errors import (
    MalformedMessage,
    NotDue,
    OverBudget,
    PayloadUnavailable,
    StoreUnavailable,
    WorkerError,
)
from worker.limits import build_user_limits
from worker.observability.spans import span
from worker.observability.tracing import current_trace_id
from worker.providers import LLM
from worker.queue import QueueClient, Received
from worker.sends import Sends
from worker.spend.variants import Variants
from worker.store import Store, WorkflowRef

__all__ = ["Decider"]

log = structlog.get_logger("worker.consumer")


class Decider:
    """Turns a received message into a verdict; writes nothing but the claim."""

    def __init__(
        self,
        settings: ConsumerSettings,
        queue: QueueClient,
        store: Store,
        llm: LLM,
        owner: str,
        sends: Sends | None = None,
        *,
        signing_key: bytes = b"",
        spend: SpendSettings | None = None,
    ) -> None:
        self._settings = settings
        self._queue = queue
        self._store = store
        self._llm = llm
        self._owner = owner
        self._sends = sends
        self._signing_key = signing_key  # worker.queue.signing_key: internal messages' HMAC
        self._variants = build_variants(spend) if spend else Variants()  # A/B (FLEET_VARIANTS)
        self._hold_max = spend.budget_hold_max if spend else math.inf  # over budget: wait this
        self._users = build_user_limits(settings, store)  # per-user rate limits; None: off

    def queue_name_of(self, message: Received) -> str:
        lane = self._queue.lanes.get(message.lane)
        return lane.queue_name if lane is not None else self._queue.queue_name

    def max_receives_of(self, message: Received) -> int:
        return self._queue.max_receives_for(message.lane) or self._settings.max_receives

    async def load(self, message: Received) -> Received | DeadLetter | Unsaved:
        """A body that is an S3 pointer (AWS's extended client format; also as an SNS
        notification's Message) with its payload fetched (``Received.content``); any
        other body as it is. A missing object is malformed (the reason names it); S3 not
        answering brings the message back later."""
        if "S3Pointer" not in message.body:
            return message
        try:
            payload = await self._queue.payloads.resolve(message.body)
        except MalformedMessage as exc:
            return _malformed(message, exc)
        except PayloadUnavailable as exc:
            log.warning("payload_unavailable", message_id=message.identity, error=str(exc))
            return Unsaved(message)
        return message if payload is None else dataclasses.replace(message, payload=payload)

    def decode(self, message: Received) -> Parsed | DeadLetter:
        """Parse the body and find its handler; anything we cannot serve is malformed."""
        try:
            trusted = verify(
                message.content, message.attributes.get(SIGNATURE_ATTRIBUTE), self._signing_key
            )
            envelope = parse_message(message.content, message.identity, trusted=trusted)
            handler = handler_for(envelope.intent.type)
        except MalformedMessage as exc:
            return _malformed(message, exc)
        intent = envelope.intent
        arm = self._variants.arm_for(intent.type, intent.user_id)
        ref = WorkflowRef(
            id=str(envelope.workflow_id),
            type=intent.type,
            user_id=intent.user_id,
            priority=intent.priority,
            trace_id=current_trace_id() or envelope.trace_id,
            parent_id=parent_of(intent) if intent.type in INTERNAL_TYPES else None,
            variant=arm.name if arm is not None else None,
        )
        return Parsed(message, envelope, ref, handler, arm)

    async def claim(self, parsed: Parsed) -> Work | Verdict:
        """The workflow's lease: Work to run, or why not (done, held, store down)."""
        message, intent = parsed.message, parsed.envelope.intent
        try:
            claim = await self._store.claim(parsed.ref, self._owner, self._settings.lease)
        except StoreUnavailable as exc:
            log.warning("workflow_claim_failed", error=str(exc))
            return Unsaved(message)
        if claim.outcome == "completed":
            log.info("workflow_duplicate_delivery")
            return Duplicate(message)
        if claim.outcome == "held":
            return Held(message, claim.seconds_left)
        session = self._llm.session(
            intent.type,
            force_provider=intent.force_provider,
            deadline=time.monotonic() + self._settings.workflow_timeout,
            use_cache=intent.data.get("cache", True) is not False,
            user_id=intent.user_id,
            arm=parsed.arm,
        )
        return Work(message, parsed.envelope, parsed.ref, parsed.handler, session)

    async def _user_turn(self, work: Work) -> Verdict | None:
        """Per-user rate limit (FLEET_USER_RATE_LIMIT), before the handler (the heartbeat
        covers a short wait in place): a later start slot postpones the message to just
        before it. Internal steps (sends, campaign chunks) are not counted."""
        if self._users is None or work.ref.type in INTERNAL_TYPES:
            return None
        try:
            wait = await self._users.admit(work.ref.id, work.ref.user_id)
        except StoreUnavailable as exc:
            return self._retry(work, exc)
        return Postpone(work, wait) if wait else None

    async def run(self, work: Work) -> Verdict:
        """Run the handler under the workflow timeout. Cancellation propagates."""
        held = await self._user_turn(work)
        if held is not None:
            return held
        context = HandlerContext(
            workflow_id=work.ref.id,
            llm=work.session,
            sends=self._sends,
            spawn=self._spawn,
            campaign_concurrency=self._settings.campaign_concurrency,
            campaign_chunk=self._settings.campaign_chunk,
            prompt_version=work.session.arm.prompt if work.session.arm else None,
        )
        log.info("workflow_started", user_id=work.ref.user_id, priority=work.ref.priority)
        try:
            async with asyncio.timeout(self._settings.workflow_timeout):
                with span(
                    f"handler {work.ref.type}", attributes={"fleet.workflow.id": work.ref.id}
                ):
                    result = await work.handler(work.envelope.intent, context)
        except Exception as exc:  # the table decides; a handler bug is retried, then DLQ'd
            return self.verdict_for(work, exc)
        return Succeeded(work, result)

    def verdict_for(self, work: Work, exc: Exception) -> Verdict:
        ruling = ruling_of(exc)
        error = error_of(exc, ruling, self._settings.workflow_timeout)
        if ruling == "postpone":
            return Postpone(work, exc.seconds if isinstance(exc, NotDue) else 0.0)
        if isinstance(exc, OverBudget):
            return self._over_budget(work, exc)
        if ruling in ("malformed", "permanent"):
            log.warning("workflow_error", error_code=error.code, error=str(error), outcome=ruling)
            error_class: Literal["malformed", "permanent"] = (
                "malformed" if ruling == "malformed" else "permanent"
            )
            return DeadLetter(work.message, work, error_class, error)
        if ruling == "bug":
            log.error("workflow_error", error_code="unknown", outcome="retry", exc_info=exc)
        return self._retry(work, error)

    def _over_budget(self, work: Work, exc: OverBudget) -> Postpone | DeadLetter:
        """Held until the budget has room (nothing of the workflow ran), or to the DLQ."""
        enqueued = work.envelope.enqueued_at
        waited = (datetime.now(UTC) - enqueued).total_seconds() if enqueued else 0.0
        if exc.action == "dead_letter" or waited + exc.seconds > self._hold_max:
            log.warning("workflow_error", error_code=exc.code, error=str(exc), outcome="permanent")
            return DeadLetter(work.message, work, "permanent", exc)
        log.info("workflow_over_budget", error=str(exc), retry_in_s=round(exc.seconds, 2))
        return Postpone(work, exc.seconds)

    def _retry(self, work: Work, error: WorkerError) -> Retry:
        message = work.message
        final = message.receive_count >= self.max_receives_of(message)
        delay = (
            0.0
            if final
            else retry_delay(
                message.receive_count,
                base=self._settings.retry_base_seconds,
                cap=self._settings.retry_max_seconds,
            )
        )
        log.warning(
            "workflow_error",
            error_code=error.code,
            error=str(error),
            outcome="exhausted" if final else "retry",
            retry_in_s=round(delay, 2),
        )
        return Retry(work, error, delay, final)

    async def _spawn(self, intent: Intent, workflow_id: uuid.UUID) -> None:
        """Start a child workflow (a campaign chunk): a new message on the work queue."""
        envelope = Envelope(workflow_id=workflow_id, intent=intent, enqueued_at=datetime.now(UTC))
        await self._queue.send_envelope(envelope)


def _malformed(message: Received, exc: MalformedMessage) -> DeadLetter:
    """A message nothing can serve: logged, and to the DLQ with the reason."""
    log.warning(
        "message_malformed", message_id=message.identity, error_code=exc.code, error=str(exc)
    )
    return DeadLetter(message, None, "malformed", exc)
