"""The message contract, v1: the envelope and intent models, the wire body, attributes.

Bodies are camelCase JSON on the wire (producers are TypeScript) and
snake_case in Python through aliases. Admission (what a producer may send, and
why not) is ``worker.contract.door``.
"""

from __future__ import annotations

import typing
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from worker.errors import EnqueueRefused

__all__ = [
    "INTENT_TYPES",
    "INTERNAL_TYPES",
    "Envelope",
    "Intent",
    "IntentCommon",
    "IntentType",
    "Priority",
    "SafeId",
    "TraceContext",
    "encode_envelope",
    "message_attributes",
]

IntentType = Literal[
    "content_planning",
    "message_generation",
    "content_validation",
    "campaign_execution",
    "campaign_batch",
    "onlyfans_send",
]
INTENT_TYPES: tuple[str, ...] = typing.get_args(IntentType)
INTERNAL_TYPES = ("campaign_batch", "onlyfans_send")  # made by the fleet itself
Priority = Literal["low", "medium", "high", "critical"]


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class TraceContext(_Wire):
    """W3C-compatible trace identifiers carried with the intent."""

    model_config = ConfigDict(extra="allow")

    trace_id: str | None = Field(None, max_length=64)
    span_id: str | None = Field(None, max_length=32)
    parent_span_id: str | None = Field(None, max_length=32)


def _printable(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters")
    return value


SafeId = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_printable)]


class IntentCommon(_Wire):
    """The fields every intent has besides ``type`` and ``data`` (the seed's
    ``ProductionWorkflowIntent``)."""

    user_id: SafeId
    platforms: list[str] = Field(default_factory=list, max_length=16)
    content_type: str | None = Field(None, max_length=64)
    send_to_only_fans: bool = False
    recipient_id: SafeId | None = None
    requires_multi_platform: bool = False
    # typing caches a Literal by its set of values: every Literal of provider names in the
    # package is written in this order, or the published enum would follow import order
    force_provider: Literal["azure", "openai"] | None = None
    priority: Priority = "medium"
    trace_context: TraceContext | None = None


class Intent(IntentCommon):
    """An intent of any type, ``data`` as the producer sent it. Producer intents are
    admitted through ``worker.contract.door``, which checks ``data`` per type."""

    type: IntentType
    data: dict[str, Any] = Field(default_factory=dict)


class Envelope(_Wire):
    """The v1 message: an intent plus its idempotency key."""

    version: Literal[1] = 1
    workflow_id: uuid.UUID
    intent: Intent
    enqueued_at: datetime | None = None

    @classmethod
    def wrap(cls, intent: Intent, workflow_id: uuid.UUID | None = None) -> Envelope:
        return cls(
            workflow_id=workflow_id or uuid.uuid4(),
            intent=intent,
            enqueued_at=datetime.now(UTC),
        )

    @property
    def trace_id(self) -> str:
        """The W3C trace id: the producer's if it sent one, else the workflow id."""
        given = self.intent.trace_context.trace_id if self.intent.trace_context else None
        return given or self.workflow_id.hex


TOO_LARGE_HINT = (
    "(FLEET_MAX_MESSAGE_BYTES); set FLEET_PAYLOAD_BUCKET to send larger bodies as S3 pointers"
)


def encode_envelope(
    envelope: Envelope,
    max_bytes: int,
    *,
    limit: str = "the queue's limit",
    hint: str = TOO_LARGE_HINT,
) -> str:
    """The wire body; refuse it (size over ``max_bytes``, ``limit`` names it) clearly."""
    body = envelope.model_dump_json(by_alias=True, exclude_none=True)
    size = len(body.encode())
    if size > max_bytes:
        raise EnqueueRefused(
            f"message body is {size} bytes, over {limit} of {max_bytes} bytes {hint}",
            code="too_large",
        )
    return body


def message_attributes(envelope: Envelope) -> dict[str, dict[str, str]]:
    """SQS message attributes for routing without a body parse (the queue client adds
    ``traceparent``/``tracestate`` when tracing is on)."""
    return {
        "intentType": {"DataType": "String", "StringValue": envelope.intent.type},
        "priority": {"DataType": "String", "StringValue": envelope.intent.priority},
        "userId": {"DataType": "String", "StringValue": envelope.intent.user_id},
    }
