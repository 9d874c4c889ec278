"""What operators do to the queues: depths, purges, reading the DLQ, SQS's own redrive.

``QueueClient`` inherits these; they only need its SQS client and its lanes.
"""

from __future__ import annotations

from typing import Any

from worker.aws import aws_call
from worker.queue.lanes import Lane
from worker.queue.messages import LaneName, QueueDepth, Received

__all__ = ["QueueOperations"]


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
