"""SQS: the client the consumer uses, and queue creation for operators."""

from worker.queue.admin import QueueSpec, create_queues
from worker.queue.client import (
    LaneName,
    QueueClient,
    QueueDepth,
    Received,
    attributes_of,
    signing_key,
    sqs_client,
)

__all__ = [
    "LaneName",
    "QueueClient",
    "QueueDepth",
    "QueueSpec",
    "Received",
    "attributes_of",
    "create_queues",
    "signing_key",
    "sqs_client",
]
