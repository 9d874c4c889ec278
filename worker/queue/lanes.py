"""A lane: one work queue and its DLQ, with the batchers for deletes and visibility.

A fleet has a standard lane (the work queue and its DLQ) and, when it exists,
a priority lane (``<queue>-priority`` and its DLQ) for ``critical``/``high``
intents. Queue URLs are always read from the server, never built.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from worker.aws import aws_call
from worker.aws.wire import SqsWire
from worker.batcher import Batcher
from worker.errors import QueueUnavailable
from worker.queue.messages import LaneName, Received

__all__ = ["BATCH_LINGER", "PRIORITY_LEVELS", "Lane", "open_lane", "queue_url"]

PRIORITY_LEVELS = frozenset({"critical", "high"})
# Deletes and visibility changes wait this long to fill a batch of 10: at 200 msg/s a
# 5 ms wait sent batches of 4, and every call costs the queue server (and AWS bills it).
BATCH_LINGER = 0.05


@dataclass(slots=True)
class Lane:
    name: LaneName
    queue_name: str
    url: str
    dlq_url: str
    max_receives: int | None
    deletes: Batcher[Received, None]
    visibility: Batcher[tuple[Received, int], None]

    @property
    def fifo(self) -> bool:
        return self.queue_name.endswith(".fifo")

    @property
    def dlq_fifo(self) -> bool:
        return self.dlq_url.endswith(".fifo")


async def queue_url(client: Any, name: str) -> str:
    reply = await aws_call(f"GetQueueUrl({name})", lambda: client.get_queue_url(QueueName=name))
    return str(reply["QueueUrl"])


async def open_lane(
    client: Any, wire: SqsWire, name: LaneName, queue_name: str, dlq_name: str
) -> Lane:
    """Look the lane's queues up, read its redrive policy, make its batchers (their
    calls go over ``wire``, the hot path's JSON client)."""
    url = await queue_url(client, queue_name)
    dlq_url = await queue_url(client, dlq_name)
    attrs = await aws_call(
        "GetQueueAttributes",
        lambda: client.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]),
    )
    policy = attrs.get("Attributes", {}).get("RedrivePolicy")
    receives = int(json.loads(policy)["maxReceiveCount"]) if policy else None

    async def delete_batch(batch: list[Received]) -> list[BaseException | None]:
        entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(batch)]
        reply = await wire.call("DeleteMessageBatch", {"QueueUrl": url, "Entries": entries})
        return _per_entry("DeleteMessage", len(batch), reply)

    async def visibility_batch(batch: list[tuple[Received, int]]) -> list[BaseException | None]:
        entries = [
            {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
            for i, (m, seconds) in enumerate(batch)
        ]
        reply = await wire.call(
            "ChangeMessageVisibilityBatch", {"QueueUrl": url, "Entries": entries}
        )
        return _per_entry("ChangeMessageVisibility", len(batch), reply)

    return Lane(
        name,
        queue_name,
        url,
        dlq_url,
        receives,
        Batcher(delete_batch, linger=BATCH_LINGER),
        Batcher(visibility_batch, linger=BATCH_LINGER),
    )


def _per_entry(what: str, count: int, reply: dict[str, Any]) -> list[BaseException | None]:
    results: list[BaseException | None] = [None] * count
    for failed in reply.get("Failed", []):
        results[int(failed["Id"])] = QueueUnavailable(
            f"{what}: {failed.get('Code')}: {failed.get('Message')}"
        )
    return results
