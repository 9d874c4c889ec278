"""The SQS client: receive, delete, visibility, send, DLQ moves, lanes.

A fleet has a standard lane (the work queue and its DLQ) and, when it exists,
a priority lane (``<queue>-priority`` and its DLQ) for ``critical``/``high``
intents. Every received message remembers its lane, so deletes, visibility
changes and DLQ moves go to the queue it came from. An envelope is put on a
queue in one place, ``send_envelope`` (and ``send_envelopes`` for batches):
it picks the lane, the attributes and enforces the size limit; a body over the
queue's limit goes to S3 and travels as a pointer when ``FLEET_PAYLOAD_BUCKET`` is set
(``payloads``: the format of AWS's SQS extended client libraries). Sending lives in
``sending``, the group and deduplication ids in ``keys``.

A FIFO fleet (a queue name ending in ``.fifo``) sends every producer intent to its
FIFO queue whatever its priority (order beats priority), and uses the priority lane,
a standard queue, for what needs a per-message delay: sends (``onlyfans_send``).

botocore errors are translated by ``worker.aws`` into ``QueueUnavailable``
(retryable) or ``ConfigError`` (a queue that does not exist). Operator calls
(depths, purges, the DLQ workbench, SQS's redrive) live in ``operators``.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import structlog

from worker.aws import aws_client
from worker.aws.wire import SqsWire
from worker.config import Settings
from worker.contract.signing import derive_key
from worker.errors import ConfigError
from worker.queue.keys import is_fifo
from worker.queue.lanes import PRIORITY_LEVELS, Lane, open_lane
from worker.queue.messages import (
    SYSTEM_ATTRIBUTES,
    LaneName,
    QueueDepth,
    Received,
    attributes_of,
    signing_key,
)
from worker.queue.payloads import Payloads
from worker.queue.sending import QueueSending

__all__ = [
    "LaneName",
    "QueueClient",
    "QueueDepth",
    "Received",
    "attributes_of",
    "signing_key",
    "sqs_client",
]

DEFAULT_MAX_BYTES = 262_144
SEND_TYPE = "onlyfans_send"
log = structlog.get_logger("worker.queue")


def sqs_client(endpoint: str | None, region: str, *, pool: int = 50) -> Any:
    """An SQS client context (see ``worker.aws.aws_client``)."""
    return aws_client("sqs", endpoint, region, pool=pool)


class QueueClient(QueueSending):
    """The work queue(s) and DLQ(s). ``async with QueueClient(...) as queue``."""

    def __init__(
        self,
        queue_name: str,
        dlq_name: str,
        *,
        endpoint: str | None,
        region: str,
        pool: int = 50,
        priority_name: str | None = None,
        max_message_bytes: int = DEFAULT_MAX_BYTES,
        signing_key: bytes = b"",
        payload_bucket: str | None = None,
        s3_endpoint: str | None = None,
        message_group: str = "user",
    ) -> None:
        self.queue_name = queue_name
        self.dlq_name = dlq_name
        self.priority_name = priority_name
        self.max_message_bytes = max_message_bytes
        self._signing_key = signing_key or derive_key(None, None, queue_name)
        self._endpoint = endpoint
        self._region = region
        self._pool = pool
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self._hot: SqsWire | None = None  # receive, delete, visibility
        self.lanes: dict[LaneName, Lane] = {}
        self.payloads = Payloads(payload_bucket, endpoint=s3_endpoint, region=region)
        self.message_group = message_group
        self.fifo = is_fifo(queue_name)
        self._hidden: dict[str, int] = {}  # FIFO: receipt handle -> last visibility set
        self._behind: dict[str, list[Received]] = {}  # FIFO: a message's waiting run

    @classmethod
    def from_settings(cls, settings: Settings, pool: int = 50) -> QueueClient:
        return cls(
            settings.queue_name,
            settings.dead_letter_queue_name,
            endpoint=settings.sqs_endpoint_url,
            region=settings.aws_region,
            pool=pool,
            priority_name=settings.priority_lane_name,
            max_message_bytes=settings.max_message_bytes,
            signing_key=signing_key(settings),
            payload_bucket=settings.payload_bucket,
            s3_endpoint=settings.s3_endpoint_url,
            message_group=settings.message_group,
        )

    async def open(self) -> None:
        stack = contextlib.AsyncExitStack()
        self._client = await stack.enter_async_context(
            sqs_client(self._endpoint, self._region, pool=self._pool)
        )
        self._stack = stack
        try:
            wire = await stack.enter_async_context(SqsWire(self._client, pool=self._pool))
            self._hot = wire
            await stack.enter_async_context(self.payloads)
            self.lanes["standard"] = await open_lane(
                self._client, wire, "standard", self.queue_name, self.dlq_name
            )
            if self.priority_name:
                try:
                    dlq = f"{self.priority_name}-dlq"
                    self.lanes["priority"] = await open_lane(
                        self._client, wire, "priority", self.priority_name, dlq
                    )
                except ConfigError:
                    if self.fifo:  # sends have no other way to wait for their slot
                        raise
                    log.warning("priority_lane_missing", queue=self.priority_name)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for lane in self.lanes.values():
            await lane.deletes.drain()
            await lane.visibility.drain()
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    async def __aenter__(self) -> QueueClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- lanes -----------------------------------------------------------
    @property
    def url(self) -> str:
        return self.lanes["standard"].url

    @property
    def dlq_url(self) -> str:
        return self.lanes["standard"].dlq_url

    @property
    def max_receives(self) -> int | None:
        return self.lanes["standard"].max_receives

    @property
    def has_priority(self) -> bool:
        return "priority" in self.lanes

    def max_receives_for(self, lane: LaneName) -> int | None:
        return self.lanes[lane].max_receives

    def lane_for(self, priority: str, intent_type: str = "") -> LaneName:
        """``critical``/``high`` go to the priority lane when there is one. On a FIFO
        fleet only sends do (they need ``DelaySeconds``); every intent keeps its order."""
        if self.fifo:
            return "priority" if intent_type == SEND_TYPE and self.has_priority else "standard"
        return "priority" if priority in PRIORITY_LEVELS and self.has_priority else "standard"

    def ordered(self, message: Received) -> bool:
        """Is this message on a FIFO queue (its group's order to keep)?"""
        return message.group_id is not None and self._of(message.lane).fifo

    # --- consuming -------------------------------------------------------
    async def receive(
        self, max_messages: int, wait_seconds: int, lane: LaneName = "standard"
    ) -> list[Received]:
        if self._hot is None:
            raise RuntimeError("QueueClient used before open()")
        of = self._of(lane)
        params: dict[str, Any] = {
            "QueueUrl": of.url,
            "MaxNumberOfMessages": max_messages,
            "WaitTimeSeconds": wait_seconds,
            "MessageSystemAttributeNames": SYSTEM_ATTRIBUTES,
            "MessageAttributeNames": ["All"],
        }
        if of.fifo:  # a retried receive gets the same messages, not a new set
            params["ReceiveRequestAttemptId"] = uuid.uuid4().hex
        reply = await self._hot.call("ReceiveMessage", params)
        return [Received.from_sqs(raw, lane) for raw in reply.get("Messages", [])]

    async def delete(self, message: Received) -> None:
        await self._of(message.lane).deletes.submit(message)

    async def set_visibility(self, message: Received, seconds: int) -> None:
        """Hide (or release, 0) a message. A FIFO message with a waiting run behind it
        (``hold_behind``) takes the run along in one batch call, never split: hidden, the
        run goes first and one second shorter (the message at least 2 s), so it is never
        out after its head, even if this process dies between two calls. Released, head
        and run are all hidden one second instead: LocalStack applies a batch's entries
        one by one, and a receive between two of them would take the head with a later
        message of its group; expired together, they come back in one pass, head first."""
        seconds = max(0, min(43_200, int(seconds)))
        lane = self._of(message.lane)
        rest = self._behind.pop(message.receipt_handle, []) if self.ordered(message) else []
        if self.ordered(message):
            self._hidden[message.receipt_handle] = seconds
        if not rest:
            await lane.visibility.submit((message, seconds))
            return
        if seconds:
            entries = [(m, max(2, seconds) - 1) for m in rest] + [(message, max(2, seconds))]
        else:
            entries = [(message, 1)] + [(m, 1) for m in rest]
        results = await lane.visibility.submit_together(entries)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]

    async def release_run(self, run: list[Received]) -> None:
        """Release ``run`` (a FIFO group's messages in order, or one message): the head
        with the rest behind it, in one call (``set_visibility``); then forget them."""
        self.hold_behind(run[0], run[1:])
        try:
            await self.set_visibility(run[0], 0)
        finally:
            for message in run:
                self.hidden_for(message)

    def hold_behind(self, message: Received, rest: list[Received]) -> None:
        """FIFO: ``rest`` waits behind ``message`` (see ``set_visibility``)."""
        if rest:
            self._behind[message.receipt_handle] = rest

    def release_behind(self, message: Received) -> list[Received] | None:
        """The run still waiting behind ``message`` (None: it went back with it)."""
        return self._behind.pop(message.receipt_handle, None)

    async def extend_visibility(self, message: Received, seconds: int) -> None:
        """The heartbeat's extension (not a verdict: ``hidden_for`` does not hear of it)."""
        await self._of(message.lane).visibility.submit((message, max(0, min(43_200, seconds))))

    def hidden_for(self, message: Received) -> int | None:
        """FIFO: the last visibility set on this message (and forget it), or None."""
        return self._hidden.pop(message.receipt_handle, None)
