"""The message contract, v1: pydantic models, parsing and JSON Schema export.

Bodies are camelCase JSON on the wire (producers are TypeScript) and
snake_case in Python through aliases. Two shapes are accepted:

* the envelope ``{"version": 1, "workflowId": uuid, "intent": {...}, "enqueuedAt": ...}``
* a bare intent ``{"type": ..., "userId": ..., ...}``; the SQS MessageId becomes
  its workflow id.

Anything else raises ``MalformedMessage`` with the field that is wrong.
"""

from __future__ import annotations

import json
import typing
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from worker.errors import EnqueueRefused, MalformedMessage

__all__ = [
    "INTENT_TYPES",
    "Envelope",
    "Intent",
    "IntentType",
    "Priority",
    "TraceContext",
    "encode_envelope",
    "json_schema",
    "message_attributes",
    "parse_message",
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
MAX_JSON_DEPTH = 32


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


class Intent(_Wire):
    """What a producer wants done (the seed's ``ProductionWorkflowIntent``)."""

    type: IntentType
    user_id: SafeId
    data: dict[str, Any] = Field(default_factory=dict)
    platforms: list[str] = Field(default_factory=list, max_length=16)
    content_type: str | None = Field(None, max_length=64)
    send_to_only_fans: bool = False
    recipient_id: SafeId | None = None
    requires_multi_platform: bool = False
    force_provider: Literal["azure", "openai"] | None = None
    priority: Priority = "medium"
    trace_context: TraceContext | None = None


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


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a decoded JSON value, stopping once past ``limit``."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        stack.extend((child, level + 1) for child in children)
    return deepest


def _describe(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(part) for part in err["loc"]) or "body"
        parts.append(f"{prefix}{where}: {err['msg']}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse_message(body: str, message_id: str) -> Envelope:
    """Turn an SQS body into an Envelope or raise MalformedMessage saying why."""
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedMessage(f"body is not JSON: {str(exc)[:120]}", code="not_json") from exc
    if not isinstance(decoded, dict):
        raise MalformedMessage(
            f"body must be a JSON object, got {type(decoded).__name__}", code="not_object"
        )
    if _depth(decoded, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise MalformedMessage(f"body nests deeper than {MAX_JSON_DEPTH} levels", code="too_deep")
    try:
        if "intent" in decoded or "workflowId" in decoded or "version" in decoded:
            return Envelope.model_validate(decoded)
        intent = Intent.model_validate(decoded)
    except ValidationError as exc:
        code = "unknown_intent" if _is_unknown_type(exc) else "schema"
        raise MalformedMessage(_describe(exc), code=code) from exc
    try:
        workflow_id = uuid.UUID(message_id)
    except ValueError:
        workflow_id = uuid.uuid5(uuid.NAMESPACE_URL, f"sqs:{message_id}")
    return Envelope(workflow_id=workflow_id, intent=intent)


def _is_unknown_type(exc: ValidationError) -> bool:
    return any(
        err["loc"][-1:] == ("type",) and err["type"] == "literal_error" for err in exc.errors()
    )


def encode_envelope(envelope: Envelope, max_bytes: int) -> str:
    """The wire body; refuse it if SQS would (size) with a clear message."""
    body = envelope.model_dump_json(by_alias=True, exclude_none=True)
    size = len(body.encode())
    if size > max_bytes:
        raise EnqueueRefused(
            f"message body is {size} bytes, over the queue's limit of {max_bytes} bytes "
            f"(FLEET_MAX_MESSAGE_BYTES); send large payloads by reference",
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


def json_schema() -> dict[str, Any]:
    """The published contract: an envelope or a bare intent."""
    envelope = Envelope.model_json_schema(by_alias=True, mode="validation")
    defs = envelope.pop("$defs", {})
    defs["Envelope"] = envelope
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://huntaze.example/schemas/hybrid-orchestrator/intent-message.v1.json",
        "title": "Hybrid Orchestrator intent message (v1)",
        "description": (
            "An SQS message body: the v1 envelope, or a bare intent whose SQS MessageId "
            "becomes its workflowId."
        ),
        "oneOf": [{"$ref": "#/$defs/Envelope"}, {"$ref": "#/$defs/Intent"}],
        "$defs": defs,
    }
