"""The SQS client: receive, delete, visibility, send, DLQ moves, lanes.

A fleet has a standard lane (the work queue and its DLQ) and, when it exists,
a priority lane (``<queue>-priority`` and its DLQ) for ``critical``/``high``
intents. Every received message remembers its lane, so deletes, visibility
changes and DLQ moves go to the queue it came from. An envelope is put on a
queue in one place, ``send_envelope`` (and ``send_envelopes`` for batches):
it picks the lane, the attributes and enforces the size limit.

botocore errors are translated by ``worker.aws`` into ``QueueUnavailable``
(retryable) or ``ConfigError`` (a queue that does not exist). Operator calls
(depths, purges, the DLQ workbench, SQS's redrive) live in ``operators``.
"""

from __future__ import annotations

import contextlib
from typing import Any

import structlog

from worker.aws import aws_call, aws_client
from worker.config import Settings
from worker.contract import INTERNAL_TYPES, Envelope, encode_envelope, message_attributes
from worker.contract.signing import SIGNATURE_ATTRIBUTE, derive_key, sign
from worker.errors import ConfigError, EnqueueRefused, QueueUnavailable
from worker.observability.spans import producing
from worker.queue.lanes import PRIORITY_LEVELS, Lane, open_lane
from worker.queue.messages import (
    SQS_MAX_ATTRIBUTES,
    Attributes,
    LaneName,
    QueueDepth,
    Received,
    attributes_of,
    fit_attributes,
    sqs_safe,
)
from worker.queue.operators import QueueOperations

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
log = structlog.get_logger("worker.queue")


def sqs_client(endpoint: str | None, region: str, *, pool: int = 50) -> Any:
    """An SQS client context (see ``worker.aws.aws_client``)."""
    return aws_client("sqs", endpoint, region, pool=pool)


def signing_key(settings: Settings) -> bytes:
    """The key of the fleet's signature on internal messages (``worker.contract.signing``)."""
    secret = settings.internal_key.get_secret_value() if settings.internal_key else None
    url = settings.database_url.get_secret_value() if settings.database_url else None
    return derive_key(secret, url, settings.queue_name)


class QueueClient(QueueOperations):
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
        self.lanes: dict[LaneName, Lane] = {}

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
        )

    async def open(self) -> None:
        stack = contextlib.AsyncExitStack()
        self._client = await stack.enter_async_context(
            sqs_client(self._endpoint, self._region, pool=self._pool)
        )
        self._stack = stack
        try:
            self.lanes["standard"] = await open_lane(
                self._client, "standard", self.queue_name, self.dlq_name
            )
            if self.priority_name:
                try:
                    self.lanes["priority"] = await open_lane(
                        self._client, "priority", self.priority_name, f"{self.priority_name}-dlq"
                    )
                except ConfigError:
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

    def lane_for(self, priority: str) -> LaneName:
        """``critical``/``high`` go to the priority lane when there is one."""
        return "priority" if priority in PRIORITY_LEVELS and self.has_priority else "standard"

    # --- consuming -------------------------------------------------------
    async def receive(
        self, max_messages: int, wait_seconds: int, lane: LaneName = "standard"
    ) -> list[Received]:
        url = self._of(lane).url
        reply = await aws_call(
            "ReceiveMessage",
            lambda: self._client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                MessageAttributeNames=["All"],
            ),
        )
        return [Received.from_sqs(raw, lane) for raw in reply.get("Messages", [])]

    async def delete(self, message: Received) -> None:
        await self._of(message.lane).deletes.submit(message)

    async def set_visibility(self, message: Received, seconds: int) -> None:
        await self._of(message.lane).visibility.submit((message, max(0, min(43_200, int(seconds)))))

    # --- producing -------------------------------------------------------
    async def send_envelope(self, envelope: Envelope, delay: int = 0) -> str:
        """Put an intent on the queue: its lane by priority, routing and trace attributes,
        refused (``EnqueueRefused``) over the queue's size limit. Returns the MessageId."""
        lane, body, attributes = self._wire(envelope)
        return await self.send(body, attributes, delay=delay, lane=lane, seed=_seed(envelope))

    async def send_envelopes(self, envelopes: list[Envelope]) -> list[str]:
        """``send_envelope`` for up to 10 envelopes, one batch call per lane among them."""
        wired = [self._wire(envelope) for envelope in envelopes]
        ids = [""] * len(wired)
        for lane in dict.fromkeys(lane for lane, _, _ in wired):
            members = [i for i, (of, _, _) in enumerate(wired) if of == lane]
            sent = await self.send_batch(
                [wired[i][1:] for i in members], lane, seeds=[_seed(envelopes[i]) for i in members]
            )
            for member, message_id in zip(members, sent, strict=True):
                ids[member] = message_id
        return ids

    def _wire(self, envelope: Envelope) -> tuple[LaneName, str, Attributes]:
        body = encode_envelope(envelope, self.max_message_bytes)
        attributes = message_attributes(envelope)
        if envelope.intent.type in INTERNAL_TYPES:
            attributes[SIGNATURE_ATTRIBUTE] = {
                "DataType": "String",
                "StringValue": sign(body, self._signing_key),
            }
        return self.lane_for(envelope.intent.priority), body, attributes

    async def send(
        self,
        body: str,
        attributes: Attributes,
        *,
        delay: int = 0,
        to_dlq: bool = False,
        lane: LaneName = "standard",
        seed: str | None = None,
    ) -> str:
        """Send a body as it is (copies of received messages, replays, raw test bodies).
        Tracing on, the copy carries the current trace (or the one it carried already);
        ``seed`` is a producer's trace id for a new one."""
        if not 0 <= delay <= 900:
            raise ValueError(f"DelaySeconds must be 0..900, got {delay}")
        target = self._of(lane)
        url = target.dlq_url if to_dlq else target.url
        with producing(url.rsplit("/", 1)[-1], attributes, seed=seed):
            reply = await aws_call(
                "SendMessage",
                lambda: self._client.send_message(
                    QueueUrl=url,
                    MessageBody=body,
                    MessageAttributes=attributes,
                    DelaySeconds=delay,
                ),
            )
        return str(reply["MessageId"])

    async def send_batch(
        self,
        items: list[tuple[str, Attributes]],
        lane: LaneName = "standard",
        *,
        seeds: list[str | None] | None = None,
    ) -> list[str]:
        """Send up to 10 bodies in one call (a producer span each); raise if any failed."""
        results = await self._send_entries(items, lane, seeds)
        failed = [r for r in results if isinstance(r, QueueUnavailable)]
        if failed:
            raise QueueUnavailable(
                f"SendMessageBatch: {len(failed)} entries failed ({failed[0]})", code=failed[0].code
            )
        return [str(r) for r in results]

    async def send_envelopes_each(
        self, envelopes: list[Envelope]
    ) -> list[str | EnqueueRefused | QueueUnavailable]:
        """``send_envelopes`` reporting per entry: a MessageId, or why that entry was not
        sent (too large; refused by SQS). Nothing raises for one entry's sake."""
        results: list[str | EnqueueRefused | QueueUnavailable] = []
        wired: list[tuple[int, tuple[LaneName, str, Attributes]]] = []
        seeds = [_seed(envelope) for envelope in envelopes]
        for index, envelope in enumerate(envelopes):
            try:
                wired.append((index, self._wire(envelope)))
            except EnqueueRefused as exc:
                results.append(exc)
                continue
            results.append("")
        for lane in dict.fromkeys(w[0] for _, w in wired):
            members = [(i, w) for i, w in wired if w[0] == lane]
            try:
                sent = await self._send_entries(
                    [w[1:] for _, w in members], lane, [seeds[i] for i, _ in members]
                )
            except QueueUnavailable as exc:
                sent = [exc] * len(members)
            for (index, _), outcome in zip(members, sent, strict=True):
                results[index] = outcome
        return results

    async def _send_entries(
        self,
        items: list[tuple[str, Attributes]],
        lane: LaneName,
        seeds: list[str | None] | None = None,
    ) -> list[str | QueueUnavailable]:
        target = self._of(lane)
        entries = [
            {"Id": str(i), "MessageBody": body, "MessageAttributes": attrs}
            for i, (body, attrs) in enumerate(items)
        ]
        with contextlib.ExitStack() as spans:
            for i, (_, attrs) in enumerate(items):
                seed = seeds[i] if seeds else None
                spans.enter_context(producing(target.queue_name, attrs, seed=seed))
            reply = await aws_call(
                "SendMessageBatch",
                lambda: self._client.send_message_batch(QueueUrl=target.url, Entries=entries),
            )
        out: list[str | QueueUnavailable] = [
            QueueUnavailable("SendMessageBatch: no answer for this entry")
        ] * len(items)
        for ok in reply.get("Successful", []):
            out[int(ok["Id"])] = str(ok["MessageId"])
        for bad in reply.get("Failed", []):
            code = str(bad.get("Code") or "aws")
            out[int(bad["Id"])] = QueueUnavailable(f"{code}: {bad.get('Message')}", code=code)
        return out

    async def move_to_dlq(self, message: Received, reason: dict[str, str]) -> None:
        """Copy to the lane's DLQ with error attributes, then delete from its queue."""
        attrs = attributes_of(message)
        for name, value in reason.items():
            attrs[name] = {"DataType": "String", "StringValue": sqs_safe(value[:256]) or "-"}
        # room for the traceparent the send adds when tracing is on
        room = SQS_MAX_ATTRIBUTES - (0 if "traceparent" in attrs else 1)
        await self.send(
            message.body or " ", fit_attributes(attrs, room), to_dlq=True, lane=message.lane
        )
        await self.delete(message)


def _seed(envelope: Envelope) -> str | None:
    """A producer's own trace id (the seed's ``traceContext``), to start its trace with."""
    given = envelope.intent.trace_context
    return given.trace_id if given is not None else None
