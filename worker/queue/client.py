"""The SQS client: receive, delete, visibility, send, DLQ moves, depths.

botocore errors are translated by ``worker.aws`` into ``QueueUnavailable``
(retryable) or ``ConfigError`` (a queue that does not exist). Queue URLs are
always read from the server, never built.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

from worker.aws import aws_call, aws_client
from worker.errors import QueueUnavailable
from worker.queue.batcher import Batcher

__all__ = ["QueueClient", "QueueDepth", "Received", "sqs_client"]

Attributes = dict[str, dict[str, str]]


@dataclass(frozen=True, slots=True)
class Received:
    """One message as received from SQS."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    sent_at_ms: int
    attributes: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_sqs(cls, raw: dict[str, Any]) -> Received:
        system = raw.get("Attributes", {})
        attrs = {
            name: str(value.get("StringValue", ""))
            for name, value in raw.get("MessageAttributes", {}).items()
        }
        return cls(
            message_id=raw["MessageId"],
            receipt_handle=raw["ReceiptHandle"],
            body=raw.get("Body", ""),
            receive_count=int(system.get("ApproximateReceiveCount", "1")),
            sent_at_ms=int(system.get("SentTimestamp", "0")),
            attributes=attrs,
        )


@dataclass(frozen=True, slots=True)
class QueueDepth:
    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


def sqs_client(endpoint: str | None, region: str, *, pool: int = 50) -> Any:
    """An SQS client context (see ``worker.aws.aws_client``)."""
    return aws_client("sqs", endpoint, region, pool=pool)


class QueueClient:
    """The work queue and its DLQ. ``async with QueueClient(...) as queue``."""

    def __init__(
        self,
        queue_name: str,
        dlq_name: str,
        *,
        endpoint: str | None,
        region: str,
        pool: int = 50,
    ) -> None:
        self.queue_name = queue_name
        self.dlq_name = dlq_name
        self._endpoint = endpoint
        self._region = region
        self._pool = pool
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self.url = ""
        self.dlq_url = ""
        self.max_receives: int | None = None
        self._deletes: Batcher[Received] | None = None
        self._visibility: Batcher[tuple[Received, int]] | None = None

    async def open(self) -> None:
        stack = contextlib.AsyncExitStack()
        self._client = await stack.enter_async_context(
            sqs_client(self._endpoint, self._region, pool=self._pool)
        )
        self._stack = stack
        try:
            self.url = await self._url_of(self.queue_name)
            self.dlq_url = await self._url_of(self.dlq_name)
            attrs = await aws_call(
                "GetQueueAttributes",
                lambda: self._client.get_queue_attributes(
                    QueueUrl=self.url, AttributeNames=["RedrivePolicy"]
                ),
            )
        except BaseException:
            await self.close()
            raise
        policy = attrs.get("Attributes", {}).get("RedrivePolicy")
        self.max_receives = int(json.loads(policy)["maxReceiveCount"]) if policy else None
        self._deletes = Batcher(self._delete_batch)
        self._visibility = Batcher(self._visibility_batch)

    async def close(self) -> None:
        for batcher in (self._deletes, self._visibility):
            if batcher is not None:
                await batcher.drain()
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

    # --- consuming -------------------------------------------------------
    async def receive(self, max_messages: int, wait_seconds: int) -> list[Received]:
        reply = await aws_call(
            "ReceiveMessage",
            lambda: self._client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                MessageAttributeNames=["All"],
            ),
        )
        return [Received.from_sqs(raw) for raw in reply.get("Messages", [])]

    async def delete(self, message: Received) -> None:
        assert self._deletes is not None, "queue client is not open"
        await self._deletes.submit(message)

    async def set_visibility(self, message: Received, seconds: int) -> None:
        assert self._visibility is not None, "queue client is not open"
        await self._visibility.submit((message, max(0, min(43_200, int(seconds)))))

    async def _delete_batch(self, batch: list[Received]) -> list[BaseException | None]:
        entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(batch)]
        reply = await aws_call(
            "DeleteMessageBatch",
            lambda: self._client.delete_message_batch(QueueUrl=self.url, Entries=entries),
        )
        return _per_entry("DeleteMessage", len(batch), reply)

    async def _visibility_batch(
        self, batch: list[tuple[Received, int]]
    ) -> list[BaseException | None]:
        entries = [
            {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
            for i, (m, seconds) in enumerate(batch)
        ]
        reply = await aws_call(
            "ChangeMessageVisibilityBatch",
            lambda: self._client.change_message_visibility_batch(
                QueueUrl=self.url, Entries=entries
            ),
        )
        return _per_entry("ChangeMessageVisibility", len(batch), reply)

    # --- producing -------------------------------------------------------
    async def send(
        self, body: str, attributes: Attributes, *, delay: int = 0, to_dlq: bool = False
    ) -> str:
        if not 0 <= delay <= 900:
            raise ValueError(f"DelaySeconds must be 0..900, got {delay}")
        url = self.dlq_url if to_dlq else self.url
        reply = await aws_call(
            "SendMessage",
            lambda: self._client.send_message(
                QueueUrl=url, MessageBody=body, MessageAttributes=attributes, DelaySeconds=delay
            ),
        )
        return str(reply["MessageId"])

    async def send_batch(self, items: list[tuple[str, Attributes]]) -> list[str]:
        """Send up to 10 bodies in one call; raise if any entry failed."""
        entries = [
            {"Id": str(i), "MessageBody": body, "MessageAttributes": attrs}
            for i, (body, attrs) in enumerate(items)
        ]
        reply = await aws_call(
            "SendMessageBatch",
            lambda: self._client.send_message_batch(QueueUrl=self.url, Entries=entries),
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
        """Copy to the DLQ with error attributes, then delete from the work queue."""
        attrs: Attributes = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in message.attributes.items()
            if value
        }
        for name, value in reason.items():
            attrs[name] = {"DataType": "String", "StringValue": value[:256] or "-"}
        attrs["sourceMessageId"] = {"DataType": "String", "StringValue": message.message_id}
        await self.send(message.body or " ", dict(list(attrs.items())[:10]), to_dlq=True)
        await self.delete(message)

    # --- operators -------------------------------------------------------
    async def depth(self, dlq: bool = False) -> QueueDepth:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        url = self.dlq_url if dlq else self.url
        reply = await aws_call(
            "GetQueueAttributes",
            lambda: self._client.get_queue_attributes(QueueUrl=url, AttributeNames=names),
        )
        values = [int(reply["Attributes"].get(name, 0)) for name in names]
        return QueueDepth(*values)

    async def purge(self, dlq: bool = False) -> None:
        url = self.dlq_url if dlq else self.url
        await aws_call("PurgeQueue", lambda: self._client.purge_queue(QueueUrl=url))

    async def receive_dlq(
        self, max_messages: int = 10, wait_seconds: int = 1, hold_seconds: int = 30
    ) -> list[Received]:
        """Read the DLQ, hiding what was read for ``hold_seconds`` (an operator's lease)."""
        reply = await aws_call(
            "ReceiveMessage(DLQ)",
            lambda: self._client.receive_message(
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=hold_seconds,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                MessageAttributeNames=["All"],
            ),
        )
        return [Received.from_sqs(raw) for raw in reply.get("Messages", [])]

    async def dlq_delete(self, message: Received) -> None:
        await aws_call(
            "DeleteMessage(DLQ)",
            lambda: self._client.delete_message(
                QueueUrl=self.dlq_url, ReceiptHandle=message.receipt_handle
            ),
        )

    async def dlq_release(self, message: Received) -> None:
        """Make a read DLQ message visible again at once."""
        await aws_call(
            "ChangeMessageVisibility(DLQ)",
            lambda: self._client.change_message_visibility(
                QueueUrl=self.dlq_url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=0
            ),
        )

    async def arn(self, dlq: bool = False) -> str:
        url = self.dlq_url if dlq else self.url
        reply = await aws_call(
            "GetQueueAttributes(QueueArn)",
            lambda: self._client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]),
        )
        return str(reply["Attributes"]["QueueArn"])

    async def start_move_task(self, rate: int | None = None) -> str:
        """SQS's own DLQ redrive (StartMessageMoveTask) back to the work queue."""
        source, destination = await self.arn(dlq=True), await self.arn()
        extra = {"MaxNumberOfMessagesPerSecond": rate} if rate else {}
        reply = await aws_call(
            "StartMessageMoveTask",
            lambda: self._client.start_message_move_task(
                SourceArn=source, DestinationArn=destination, **extra
            ),
        )
        return str(reply["TaskHandle"])

    async def move_tasks(self) -> list[dict[str, Any]]:
        source = await self.arn(dlq=True)
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
