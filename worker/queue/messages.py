"""What travels through the queues: received messages, their attributes, depths."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from worker.config import Settings
from worker.contract.signing import derive_key

__all__ = [
    "KEEP_FIRST",
    "SQS_MAX_ATTRIBUTES",
    "SYSTEM_ATTRIBUTES",
    "Attributes",
    "LaneName",
    "QueueDepth",
    "Received",
    "attributes_of",
    "fit_attributes",
    "signing_key",
    "sqs_safe",
]

Attributes = dict[str, dict[str, str]]
LaneName = Literal["standard", "priority"]
SYSTEM_ATTRIBUTES = ["ApproximateReceiveCount", "SentTimestamp", "MessageGroupId"]


@dataclass(frozen=True, slots=True)
class Received:
    """One message as received from SQS."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    sent_at_ms: int
    attributes: dict[str, str] = field(default_factory=dict)
    lane: LaneName = "standard"
    payload: str | None = None  # the body an S3 pointer body stands for, once fetched
    group_id: str | None = None  # MessageGroupId (FIFO order; a standard queue's tenant)

    @property
    def content(self) -> str:
        """What the message says: the fetched S3 payload of a pointer body, else the body.
        Copies (requeues, DLQ moves) send ``body``, so a pointer stays a pointer."""
        return self.body if self.payload is None else self.payload

    @property
    def identity(self) -> str:
        """The message's first MessageId: copies the fleet makes (fairness requeues,
        re-delays, DLQ moves and replays) carry it as ``sourceMessageId``."""
        return self.attributes.get("sourceMessageId") or self.message_id

    @classmethod
    def from_sqs(cls, raw: dict[str, Any], lane: LaneName = "standard") -> Received:
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
            lane=lane,
            group_id=system.get("MessageGroupId") or None,
        )


@dataclass(frozen=True, slots=True)
class QueueDepth:
    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


_SQS_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def sqs_safe(text: str) -> str:
    """Only the characters SQS accepts in bodies and attributes (hostile input has others)."""
    return _SQS_INVALID.sub("?", text)


SQS_MAX_ATTRIBUTES = 10
# What a DLQ copy keeps first when SQS's ten attributes are not enough: why it left, who
# it is, how to route it and prove it internal; trace and user come last.
KEEP_FIRST = (
    "errorClass",
    "errorCode",
    "errorMessage",
    "sourceMessageId",
    "intentType",
    "priority",
    "fleetSignature",
    "traceparent",
)


def fit_attributes(attrs: Attributes, room: int = SQS_MAX_ATTRIBUTES) -> Attributes:
    """At most ``room`` attributes, those of ``KEEP_FIRST`` first (in that order)."""
    if len(attrs) <= room:
        return attrs
    ranked = sorted(attrs, key=lambda n: KEEP_FIRST.index(n) if n in KEEP_FIRST else 99)
    return {name: attrs[name] for name in ranked[:room]}


def attributes_of(message: Received) -> Attributes:
    """A received message's attributes, ready to send again as a copy of it."""
    attrs = {
        name: {"DataType": "String", "StringValue": value}
        for name, value in message.attributes.items()
        if value
    }
    attrs["sourceMessageId"] = {"DataType": "String", "StringValue": message.identity}
    return attrs


def signing_key(settings: Settings) -> bytes:
    """The key of the fleet's signature on internal messages (``worker.contract.signing``)."""
    secret = settings.internal_key.get_secret_value() if settings.internal_key else None
    url = settings.database_url.get_secret_value() if settings.database_url else None
    return derive_key(secret, url, settings.queue_name)
