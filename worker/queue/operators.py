"""What operators do to the queues: depths, purges, reading the DLQ, SQS's own redrive.

``QueueClient`` inherits these; they only need its SQS client and its lanes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from worker.aws import aws_call
from worker.errors import QueueUnavailable
from worker.queue.lanes import Lane
from worker.queue.messages import SYSTEM_ATTRIBUTES, LaneName, QueueDepth, Received

__all__ = ["DLQ_PARALLEL", "QueueOperations"]

DLQ_PARALLEL = 16  # batch calls (of ten messages) in flight at once on a large DLQ


class QueueOperations:
    """Operator calls on the lanes of an open ``QueueClient``."""

    _client: Any
    lanes: dict[LaneName, Lane]

    def _of(self, lane: LaneName) -> Lane:
        return self.lanes[lane] if lane in self.lanes else self.lanes["standard"]

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
                MessageSystemAttributeNames=SYSTEM_ATTRIBUTES,
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

    async def dlq_release_all(self, messages: Sequence[Received]) -> None:
        """Make read DLQ messages visible again at once, ten per call, calls in parallel."""
        await self._dlq_batches("ChangeMessageVisibilityBatch(DLQ)", messages, release=True)

    async def dlq_delete_all(self, messages: Sequence[Received]) -> None:
        """Delete read DLQ messages, ten per call, calls in parallel."""
        await self._dlq_batches("DeleteMessageBatch(DLQ)", messages, release=False)

    async def _dlq_batches(self, what: str, messages: Sequence[Received], release: bool) -> None:
        batches: list[tuple[str, list[dict[str, Any]]]] = []
        for lane in {m.lane for m in messages}:
            url = self._of(lane).dlq_url
            mine = [m for m in messages if m.lane == lane]
            for start in range(0, len(mine), 10):
                entries: list[dict[str, Any]] = [
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle}
                    for i, m in enumerate(mine[start : start + 10])
                ]
                batches.append((url, entries))
        gate = asyncio.Semaphore(DLQ_PARALLEL)

        async def one(url: str, entries: list[dict[str, Any]]) -> None:
            async with gate:
                await self._dlq_batch(what, url, entries, release)

        await asyncio.gather(*(one(url, entries) for url, entries in batches))

    async def _dlq_batch(
        self, what: str, url: str, entries: list[dict[str, Any]], release: bool
    ) -> None:
        if release:
            for entry in entries:
                entry["VisibilityTimeout"] = 0
            call = self._client.change_message_visibility_batch
        else:
            call = self._client.delete_message_batch
        reply = await aws_call(what, lambda: call(QueueUrl=url, Entries=entries))
        failed = [f for f in reply.get("Failed", []) if f.get("Code") != "ReceiptHandleIsInvalid"]
        if failed:
            raise QueueUnavailable(
                f"{what}: {len(failed)} entries failed ({failed[0].get('Code')}: "
                f"{failed[0].get('Message')})"
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
