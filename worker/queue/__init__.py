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
from worker.queue.payloads import Payloads, Pointer, encode_body, pointer_of

__all__ = [
    "LaneName",
    "Payloads",
    "Pointer",
    "QueueClient",
    "QueueDepth",
    "QueueSpec",
    "Received",
    "attributes_of",
    "create_queues",
    "encode_body",
    "pointer_of",
    "signing_key",
    "sqs_client",
]
