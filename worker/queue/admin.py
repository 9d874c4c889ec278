"""Create (or bring up to date) the work queue and its DLQ, idempotently.

A queue name ending in ``.fifo`` makes FIFO queues: the work queue and its DLQ
(``<name>-dlq.fifo``). The priority lane of a FIFO fleet stays a standard queue
(``<name>-priority``): it carries the sends, which need a per-message delay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from worker.aws import aws_call
from worker.config import Settings
from worker.errors import ConfigError
from worker.queue.client import sqs_client
from worker.queue.keys import is_fifo

__all__ = ["QueueSpec", "create_queues"]

DLQ_RETENTION = 14 * 24 * 3600


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    dlq_name: str
    max_receives: int
    visibility_timeout: int
    max_message_bytes: int
    priority_name: str | None = None
    high_throughput: bool = True  # FIFO: DeduplicationScope/FifoThroughputLimit per group

    @classmethod
    def from_settings(cls, settings: Settings) -> QueueSpec:
        return cls(
            settings.queue_name,
            settings.dead_letter_queue_name,
            settings.max_receives,
            settings.visibility_timeout,
            settings.max_message_bytes,
            settings.priority_lane_name,
            settings.fifo_high_throughput,
        )


def _kind(name: str, high_throughput: bool) -> dict[str, str]:
    """A FIFO queue's own attributes (none for a standard one). ``FifoQueue`` and
    ``ContentBasedDeduplication`` off are set at creation only (SQS refuses to change the
    first); deduplication ids are the workflow ids, so content never decides."""
    if not is_fifo(name):
        return {}
    scope = ("messageGroup", "perMessageGroupId") if high_throughput else ("queue", "perQueue")
    return {
        "FifoQueue": "true",
        "ContentBasedDeduplication": "false",
        "DeduplicationScope": scope[0],
        "FifoThroughputLimit": scope[1],
    }


async def _ensure(client: Any, name: str, attributes: dict[str, str]) -> str:
    """Create the queue, or update the attributes of the one that exists."""
    try:
        reply = await aws_call(f"GetQueueUrl({name})", lambda: client.get_queue_url(QueueName=name))
    except ConfigError:  # the queue does not exist yet
        reply = await aws_call(
            f"CreateQueue({name})",
            lambda: client.create_queue(QueueName=name, Attributes=attributes),
        )
        return str(reply["QueueUrl"])
    url = str(reply["QueueUrl"])
    changeable = {key: value for key, value in attributes.items() if key != "FifoQueue"}
    await aws_call(
        f"SetQueueAttributes({name})",
        lambda: client.set_queue_attributes(QueueUrl=url, Attributes=changeable),
    )
    return url


async def create_queues(spec: QueueSpec, *, endpoint: str | None, region: str) -> dict[str, str]:
    """Make each lane's DLQ, then its queue redriving into it; return URLs and ARNs."""
    async with sqs_client(endpoint, region, pool=4) as client:
        made = await _create_lane(client, spec, spec.name, spec.dlq_name)
        if spec.priority_name:
            lane = await _create_lane(client, spec, spec.priority_name, f"{spec.priority_name}-dlq")
            made.update({f"priority_{key}": value for key, value in lane.items()})
        return made


async def _create_lane(client: Any, spec: QueueSpec, name: str, dlq_name: str) -> dict[str, str]:
    if is_fifo(name) != is_fifo(dlq_name):
        raise ConfigError(
            f"{name} and its DLQ {dlq_name} must both be FIFO (.fifo) or both standard: "
            "check FLEET_DLQ_NAME"
        )
    dlq_url = await _ensure(
        client,
        dlq_name,
        {
            "MessageRetentionPeriod": str(DLQ_RETENTION),
            "MaximumMessageSize": str(spec.max_message_bytes),
            **_kind(dlq_name, spec.high_throughput),
        },
    )
    arn_reply = await aws_call(
        "GetQueueAttributes",
        lambda: client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"]),
    )
    dlq_arn = str(arn_reply["Attributes"]["QueueArn"])
    url = await _ensure(
        client,
        name,
        {
            "VisibilityTimeout": str(spec.visibility_timeout),
            "MaximumMessageSize": str(spec.max_message_bytes),
            "ReceiveMessageWaitTimeSeconds": "20",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receives}
            ),
            **_kind(name, spec.high_throughput),
        },
    )
    arn_reply = await aws_call(
        "GetQueueAttributes",
        lambda: client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]),
    )
    arn = str(arn_reply["Attributes"]["QueueArn"])
    await aws_call(
        "SetQueueAttributes(RedriveAllowPolicy)",
        lambda: client.set_queue_attributes(
            QueueUrl=dlq_url,
            Attributes={
                "RedriveAllowPolicy": json.dumps(
                    {"redrivePermission": "byQueue", "sourceQueueArns": [arn]}
                )
            },
        ),
    )
    return {"queue_url": url, "queue_arn": arn, "dlq_url": dlq_url, "dlq_arn": dlq_arn}
