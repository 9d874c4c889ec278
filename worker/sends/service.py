"""Sends as handlers see them: schedule a message to a fan, deliver it on its slot.

``schedule`` reserves the slot in Postgres and enqueues an ``onlyfans_send``
message delayed to it (DelaySeconds ≤ 900). ``deliver`` runs in that message's
handler: a send that is done is a no-op; one that is early raises ``NotDue``
(the consumer re-delays it); otherwise the gateway is called with the send's
idempotency key, with in-process retries, each attempt passing the pair guard.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import structlog

from worker.contract import Envelope, Intent
from worker.errors import NotDue, PermanentError, RetryableError
from worker.outbound import retrying
from worker.sends.gateway import GatewayClient
from worker.store.sends import SendLedger

__all__ = ["MAX_DELAY", "Enqueue", "Sends", "enqueue_delay", "send_key"]

MAX_DELAY = 900
SHORT_WAIT = 1.0
Enqueue = Callable[[Envelope, int], Awaitable[None]]
log = structlog.get_logger("worker.sends")


def send_key(source_id: str, recipient_id: str) -> str:
    """The idempotency key of one message to one fan from one workflow or campaign."""
    return hashlib.sha256(f"{source_id}:{recipient_id}".encode()).hexdigest()[:40]


def enqueue_delay(due_in: float) -> int:
    """DelaySeconds for a slot ``due_in`` seconds away: whole seconds, rounded up (a
    fraction above a millisecond counts as a second), 0 for a slot already due, at most
    SQS's 900 (a later slot is re-delayed on receipt)."""
    return max(0, min(MAX_DELAY, int(due_in + 0.999)))


class Sends:
    def __init__(
        self,
        ledger: SendLedger,
        gateway: GatewayClient | None,
        enqueue: Enqueue,
        *,
        spacing: float,
        key_mode: Literal["pair", "creator"] = "pair",
        retry_delays: Sequence[float] = (1.0, 2.0, 5.0),
    ) -> None:
        self._ledger = ledger
        self.gateway = gateway
        self._enqueue = enqueue
        self.spacing = spacing
        self._key_mode = key_mode
        self._delays = tuple(retry_delays)

    def pair_key(self, user_id: str, recipient_id: str) -> str:
        return user_id if self._key_mode == "creator" else f"{user_id}:{recipient_id}"

    async def schedule(
        self,
        *,
        workflow_id: str,
        user_id: str,
        recipient_id: str,
        message: str,
        replace: bool = False,
        campaign_id: str | None = None,
        trace: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        if self.gateway is None:
            raise PermanentError(
                "sending is not configured: set FLEET_SEND_GATEWAY_URL", code="send_not_configured"
            )
        key = send_key(campaign_id or workflow_id, recipient_id)
        scheduled = await self._ledger.schedule(
            key=key,
            workflow_id=workflow_id,
            campaign_id=campaign_id,
            user_id=user_id,
            recipient_id=recipient_id,
            pair_key=self.pair_key(user_id, recipient_id),
            message=message,
            spacing=self.spacing,
            replace=replace,
        )
        delay = enqueue_delay((scheduled.slot_at - datetime.now(UTC)).total_seconds())
        if not scheduled.enqueued and scheduled.status == "scheduled":
            intent = Intent(
                type="onlyfans_send",
                user_id=user_id,
                recipient_id=recipient_id,
                priority="high",
                data={"sendId": scheduled.id, "parentId": campaign_id or workflow_id},
            )
            envelope = Envelope(
                workflow_id=uuid.uuid5(uuid.NAMESPACE_URL, f"send:{key}"),
                intent=intent,
                enqueued_at=datetime.now(UTC),
            )
            await self._enqueue(envelope, delay)
            await self._ledger.mark_enqueued(scheduled.id)
        log.info(
            "onlyfans_message_scheduled",
            send_id=scheduled.id,
            recipient_id=recipient_id,
            slot=scheduled.slot_at.isoformat(),
            delay_s=delay,
            superseded=list(scheduled.superseded),
            new=scheduled.created,
        )
        return {
            "sendId": scheduled.id,
            "slot": scheduled.slot_at.isoformat(),
            "superseded": list(scheduled.superseded),
        }

    async def record_progress(self, campaign_id: str, recipients: int) -> None:
        await self._ledger.record_progress(campaign_id, recipients)

    async def deliver(self, send_id: int) -> dict[str, Any]:
        decision = await self._ledger.begin(send_id, self.spacing)
        for _ in range(3):  # due within a second: wait here rather than re-enqueue
            if decision.action != "wait" or decision.wait_seconds > SHORT_WAIT:
                break
            await asyncio.sleep(decision.wait_seconds)
            decision = await self._ledger.begin(send_id, self.spacing)
        if decision.action == "missing":
            raise PermanentError(f"send {send_id} does not exist", code="send_missing")
        row = decision.row or {}
        if decision.action == "done":
            log.info("onlyfans_send_skipped", send_id=send_id, status=row.get("status"))
            return {"sendId": send_id, "status": row.get("status"), "delivered": False}
        if decision.action == "wait":
            raise NotDue(
                f"send {send_id} is due in {decision.wait_seconds:.1f}s",
                seconds=decision.wait_seconds,
            )
        if self.gateway is None:
            raise PermanentError(
                "sending is not configured: set FLEET_SEND_GATEWAY_URL", code="send_not_configured"
            )
        try:
            message_id = await self._call(row)
        except PermanentError as exc:
            await self._ledger.fail(send_id, exc.code, str(exc))
            log.warning("onlyfans_send_failed", send_id=send_id, error_code=exc.code)
            raise
        except RetryableError as exc:
            await self._ledger.note_error(send_id, exc.code, str(exc))
            raise
        await self._ledger.finish(send_id, message_id)
        log.info("onlyfans_message_sent", send_id=send_id, recipient_id=row["recipient_id"])
        return {
            "sendId": send_id,
            "status": "sent",
            "delivered": True,
            "gatewayMessageId": message_id,
        }

    async def _call(self, row: dict[str, Any]) -> str:
        gateway = self.gateway
        assert gateway is not None

        async def attempt() -> str:
            wait = await self._ledger.acquire_pair(row["pair_key"], row["id"], self.spacing)
            if wait > 0:  # another send took the pair meanwhile: come back later
                raise NotDue(f"pair busy for {wait:.1f}s", seconds=wait)
            return await gateway.send(
                creator_id=row["user_id"],
                fan_id=row["recipient_id"],
                text=row["message"],
                key=row["idempotency_key"],
            )

        return await retrying(self._delays, attempt)()
