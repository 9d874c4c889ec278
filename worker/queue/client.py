"""The SQS client: receive, delete, visibility, send, DLQ moves, depths, lanes.

A fleet has a standard lane (the work queue and its DLQ) and, when it exists,
a priority lane (``<queue>-priority`` and its DLQ) for ``critical``/``high``
intents. Every received message remembers its lane, so deletes, visibility
changes and DLQ moves go to the queue it came from.

botocore errors are translated by ``worker.aws`` into ``QueueUnavailable``
(retryable) or ``ConfigError`` (a queue that does not exist). Queue URLs are
always read from the server, never built.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

import structlog

from worker.aws import aws_call, aws_client
from worker.batcher import Batcher
from worker.config import Settings
from worker.errors import ConfigError, QueueUnavailable
from worker.queue.messages import (
    Attributes,
    LaneName,
    QueueDepth,
    Received,
    attributes_of,
    sqs_safe,
)

__all__ = ["LaneName", "QueueClient", "QueueDepth", "Received", "attributes_of", "sqs_client"]

PRIORITY_LEVELS = frozenset({"critical", "high"})
# Deletes and visibility changes wait this long to fill a batch of 10: at 200 msg/s a
# 5 ms wait sent batches of 4, and every call costs the queue server (and AWS bills it).
BATCH_LINGER = 0.05
log = structlog.get_logger("worker.queue")


@dataclass(slots=True)
class _Lane:
    name: LaneName
    queue_name: str
    url: str
    dlq_url: str
    max_receives: int | None
    deletes: Batcher[Received, None]
    visibility: Batcher[tuple[Received, int], None]


def sqs_client(endpoint: str | None, region: str, *, pool: int = 50) -> Any:
    """An SQS client context (see ``worker.aws.aws_client``)."""
    return aws_client("sqs", endpoint, region, pool=pool)


class QueueClient:
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
    ) -> None:
        self.queue_name = queue_name
        self.dlq_name = dlq_name
        self.priority_name = priority_name
        self._endpoint = endpoint
        self._region = region
        self._pool = pool
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self.lanes: dict[LaneName, _Lane] = {}

    @classmethod
    def from_settings(cls, settings: Settings, pool: int = 50) -> QueueClient:
        return cls(
            settings.queue_name,
            settings.dead_letter_queue_name,
            endpoint=settings.sqs_endpoint_url,
            region=settings.aws_region,
            pool=pool,
            priority_name=settings.priority_lane_name,
        )

    async def open(self) -> None:
        stack = contextlib.AsyncExitStack()
        self._client = await stack.enter_async_context(
            sqs_client(self._endpoint, self._region, pool=self._pool)
        )
        self._stack = stack
        try:
            self.lanes["standard"] = await self._lane("standard", self.queue_name, self.dlq_name)
            if self.priority_name:
                try:
                    self.lanes["priority"] = await self._lane(
                        "priority", self.priority_name, f"{self.priority_name}-dlq"
                    )
                except ConfigError:
                    log.warning("priority_lane_missing", queue=self.priority_name)
        except BaseException:
            await self.close()
            raise

    async def _lane(self, name: LaneName, queue_name: str, dlq_name: str) -> _Lane:
        url = await self._url_of(queue_name)
        dlq_url = await self._url_of(dlq_name)
        attrs = await aws_call(
            "GetQueueAttributes",
            lambda: self._client.get_queue_attributes(
                QueueUrl=url, AttributeNames=["RedrivePolicy"]
            ),
        )
        policy = attrs.get("Attributes", {}).get("RedrivePolicy")
        receives = int(json.loads(policy)["maxReceiveCount"]) if policy else None

        async def delete_batch(batch: list[Received]) -> list[BaseException | None]:
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(batch)
            ]
            reply = await aws_call(
                "DeleteMessageBatch",
                lambda: self._client.delete_message_batch(QueueUrl=url, Entries=entries),
            )
            return _per_entry("DeleteMessage", len(batch), reply)

        async def visibility_batch(batch: list[tuple[Received, int]]) -> list[BaseException | None]:
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                for i, (m, seconds) in enumerate(batch)
            ]
            reply = await aws_call(
                "ChangeMessageVisibilityBatch",
                lambda: self._client.change_message_visibility_batch(QueueUrl=url, Entries=entries),
            )
            return _per_entry("ChangeMessageVisibility", len(batch), reply)

        return _Lane(
            name,
            queue_name,
            url,
            dlq_url,
            receives,
            Batcher(delete_batch, linger=BATCH_LINGER),
            Batcher(visibility_batch, linger=BATCH_LINGER),
        )

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

    async def _url_of(self, name: str) -> str:
        reply = await aws_call(
            f"GetQueueUrl({name})", lambda: self._client.get_queue_url(QueueName=name)
        )
        return str(reply["QueueUrl"])

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

    def _of(self, lane: LaneName) -> _Lane:
        return self.lanes[lane] if lane in self.lanes else self.lanes["standard"]

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
    async def send(
        self,
        body: str,
        attributes: Attributes,
        *,
        delay: int = 0,
        to_dlq: bool = False,
        lane: LaneName = "standard",
    ) -> str:
        if not 0 <= delay <= 900:
            raise ValueError(f"DelaySeconds must be 0..900, got {delay}")
        target = self._of(lane)
        url = target.dlq_url if to_dlq else target.url
        reply = await aws_call(
            "SendMessage",
            lambda: self._client.send_message(
                QueueUrl=url, MessageBody=body, MessageAttributes=attributes, DelaySeconds=delay
            ),
        )
        return str(reply["MessageId"])

    async def send_batch(
        self, items: list[tuple[str, Attributes]], lane: LaneName = "standard"
    ) -> list[str]:
        """Send up to 10 bodies in one call; raise if any entry failed."""
        url = self._of(lane).url
        entries = [
            {"Id": str(i), "MessageBody": body, "MessageAttributes": attrs}
            for i, (body, attrs) in enumerate(items)
        ]
        reply = await aws_call(
            "SendMessageBatch",
            lambda: self._client.send_message_batch(QueueUrl=url, Entries=entries),
        )
        if reply.get("Failed"):
            first = reply["Failed"][0]
            raise QueueUnavailable(
                f"SendMessageBatch: {len(reply['Failed'])} entries failed "
                f"({first.get('Code')}: {first.get('Message')})"
            )
        by_id = {int(ok["Id"]): str(ok["MessageId"]) for ok in reply.get("Successful", [])}
        return [by_id[i] for i in range(len(items))]

    async def move_to_dlq(self, message: Received, reason: dict[str, str]) -> None:
        """Copy to the lane's DLQ with error attributes, then delete from its queue."""
        attrs = attributes_of(message)
        for name, value in reason.items():
            attrs[name] = {"DataType": "String", "StringValue": sqs_safe(value[:256]) or "-"}
        await self.send(
            message.body or " ", dict(list(attrs.items())[:10]), to_dlq=True, lane=message.lane
        )
        await self.delete(message)

    # --- operators -------------------------------------------------------
    async def depth(self, dlq: bool = False, lane: LaneName = "standard") -> QueueDepth:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        target = self._of(lane)
        url = target.dlq_url if dlq else target.url
        reply = await aws_call(
            "GetQueueAttributes",
            lambda: self._client.get_queue_attributes(QueueUrl=url, AttributeNames=names),
        )
        values = [int(reply["Attributes"].get(name, 0)) for name in names]
        return QueueDepth(*values)

    async def total_depth(self, dlq: bool = False) -> QueueDepth:
        """Both lanes added up."""
        depths = [await self.depth(dlq, lane) for lane in self.lanes]
        return QueueDepth(
            *(
                sum(values)
                for values in zip(
                    *((d.visible, d.in_flight, d.delayed) for d in depths), strict=True
                )
            )
        )

    async def purge(self, dlq: bool = False, lane: LaneName = "standard") -> None:
        target = self._of(lane)
        url = target.dlq_url if dlq else target.url
        await aws_call("PurgeQueue", lambda: self._client.purge_queue(QueueUrl=url))

    async def receive_dlq(
        self,
        max_messages: int = 10,
        wait_seconds: int = 1,
        hold_seconds: int = 30,
        lane: LaneName = "standard",
    ) -> list[Received]:
        """Read a DLQ, hiding what was read for ``hold_seconds`` (an operator's lease)."""
        url = self._of(lane).dlq_url
        reply = await aws_call(
            "ReceiveMessage(DLQ)",
            lambda: self._client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=hold_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                MessageAttributeNames=["All"],
            ),
        )
        return [Received.from_sqs(raw, lane) for raw in reply.get("Messages", [])]

    async def dlq_delete(self, message: Received) -> None:
        url = self._of(message.lane).dlq_url
        await aws_call(
            "DeleteMessage(DLQ)",
            lambda: self._client.delete_message(QueueUrl=url, ReceiptHandle=message.receipt_handle),
        )

    async def dlq_release(self, message: Received) -> None:
        """Make a read DLQ message visible again at once."""
        url = self._of(message.lane).dlq_url
        await aws_call(
            "ChangeMessageVisibility(DLQ)",
            lambda: self._client.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=0
            ),
        )

    async def arn(self, dlq: bool = False, lane: LaneName = "standard") -> str:
        target = self._of(lane)
        url = target.dlq_url if dlq else target.url
        reply = await aws_call(
            "GetQueueAttributes(QueueArn)",
            lambda: self._client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]),
        )
        return str(reply["Attributes"]["QueueArn"])

    async def start_move_task(self, rate: int | None = None, lane: LaneName = "standard") -> str:
        """SQS's own DLQ redrive (StartMessageMoveTask) back to the lane's queue."""
        source, destination = await self.arn(True, lane), await self.arn(False, lane)
        extra = {"MaxNumberOfMessagesPerSecond": rate} if rate else {}
        reply = await aws_call(
            "StartMessageMoveTask",
            lambda: self._client.start_message_move_task(
                SourceArn=source, DestinationArn=destination, **extra
            ),
        )
        return str(reply["TaskHandle"])

    async def move_tasks(self, lane: LaneName = "standard") -> list[dict[str, Any]]:
        source = await self.arn(True, lane)
        reply = await aws_call(
            "ListMessageMoveTasks",
            lambda: self._client.list_message_move_tasks(SourceArn=source, MaxResults=10),
        )
        return list(reply.get("Results", []))


def _per_entry(what: str, count: int, reply: dict[str, Any]) -> list[BaseException | None]:
    results: list[BaseException | None] = [None] * count
    for failed in reply.get("Failed", []):
        results[int(failed["Id"])] = QueueUnavailable(
            f"{what}: {failed.get('Code')}: {failed.get('Message')}"
        )
    return results
