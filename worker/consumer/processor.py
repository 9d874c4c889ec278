"""One message, start to end: decide a verdict (``decide``), settle it (``settle``),
count the outcome (``Metrics``). Nothing else lives here.

Settling is shielded from cancellation; shutdown overtaking a handler releases
its message and lease (shielded too) and lets the cancellation go on.
"""

from __future__ import annotations

import asyncio
import time

import structlog

from worker.consumer.decide import Decider
from worker.consumer.heartbeat import Heartbeat
from worker.consumer.outcomes import Outcome, Work
from worker.consumer.settle import Settler
from worker.consumer.verdicts import DeadLetter, Verdict
from worker.contract import INTENT_TYPES
from worker.observability.metrics import Metrics
from worker.observability.spans import consuming
from worker.queue import Received

__all__ = ["Processor"]


class Processor:
    """Turns one received message into exactly one outcome."""

    def __init__(
        self, decider: Decider, settler: Settler, heartbeat: Heartbeat, metrics: Metrics
    ) -> None:
        self._decider = decider
        self._settler = settler
        self._heartbeat = heartbeat
        self._metrics = metrics

    async def process(self, message: Received) -> Outcome:
        started = time.monotonic()
        with consuming(
            message.message_id,
            message.attributes,
            message.body,
            destination=self._decider.queue_name_of(message),
            receive_count=message.receive_count,
            sent_at_ms=message.sent_at_ms,
        ) as span:
            outcome = await self._process(message)
            span.set_attribute("fleet.outcome", outcome)
        intent = message.attributes.get("intentType", "")
        self._metrics.workflow(
            intent if intent in INTENT_TYPES else "unknown", outcome, time.monotonic() - started
        )
        return outcome

    async def requeue_later(self, message: Received, delay: int) -> Outcome:
        """Fairness: a delayed copy to the back of the lane (see ``Settler.requeue_later``)."""
        outcome = await asyncio.shield(self._settler.requeue_later(message, delay))
        if outcome == "requeued":
            self._metrics.requeued()
        return outcome

    async def drain(self) -> None:
        """Wait for the deletes still on their way (shutdown)."""
        await self._settler.drain()

    async def _process(self, message: Received) -> Outcome:
        parsed = self._decider.decode(message)
        if isinstance(parsed, DeadLetter):
            return await self._settle(parsed)
        ref = parsed.ref
        with structlog.contextvars.bound_contextvars(
            workflow_id=ref.id,
            trace_id=ref.trace_id,
            intent_type=ref.type,
            receive_count=message.receive_count,
        ):
            claimed = await self._decider.claim(parsed)
            if not isinstance(claimed, Work):
                return await self._settle(claimed)
            self._heartbeat.track(message, ref.id)
            try:
                return await self._settle(await self._run(claimed))
            finally:
                self._heartbeat.untrack(message)

    async def _run(self, work: Work) -> Verdict:
        try:
            return await self._decider.run(work)
        except asyncio.CancelledError:
            await asyncio.shield(self._settler.release(work))
            raise

    async def _settle(self, verdict: Verdict) -> Outcome:
        return await asyncio.shield(self._settler.settle(verdict))
