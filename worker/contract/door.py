"""Admission: what a producer may send and, when not, why, in one reason string.

Bodies that other AWS routes wrap (an SNS notification with raw delivery off,
an EventBridge event) are unwrapped first (``unwrap``).

The door (``fleet enqueue``, its ``--dry-run``, ``worker.producer``) and the
worker's decide step both call ``admit``: the same models, the same intent-level
rules, the same reason. Producer intents are a union discriminated by ``type``
whose ``data`` models come from ``worker.contract.data``; the published JSON Schema
is generated from the same union (``json_schema``).

Internal steps (``onlyfans_send``, ``campaign_batch``) are admitted only when the
caller vouches for the message (``trusted``: the worker checked its signature,
``worker.contract.signing``); otherwise their type is unknown, like any other.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Annotated, Any, Literal, Union

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, create_model, model_validator
from pydantic_core import PydanticCustomError

from worker.contract.data import DATA_MODELS, PRODUCER_TYPES, CheckedData
from worker.contract.envelope import INTERNAL_TYPES, Envelope, IntentCommon, _Wire
from worker.contract.reasons import describe
from worker.errors import MalformedMessage

__all__ = [
    "MAX_JSON_DEPTH",
    "ProducerEnvelope",
    "admit",
    "json_schema",
    "parse_message",
    "unwrap",
]

MAX_JSON_DEPTH = 32


class _ProducerCommon(IntentCommon):
    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                "properties": {"sendToOnlyFans": {"const": True}},
                "required": ["sendToOnlyFans"],
            },
            "then": {
                "properties": {"recipientId": {"type": "string"}},
                "required": ["recipientId"],
            },
        }
    )

    @model_validator(mode="after")
    def _send_needs_recipient(self) -> _ProducerCommon:
        if self.send_to_only_fans and not self.recipient_id:
            raise PydanticCustomError(
                "recipient_required",
                "required when sendToOnlyFans is true (the fan to send to)",
                {"field": "recipientId"},
            )
        return self


def _data_default(intent_type: str) -> Any:
    """``data`` may be left out only where an empty object can be served."""
    try:
        DATA_MODELS[intent_type].model_validate({})
    except ValidationError:
        return Field(...)
    return Field(default_factory=dict)


def _intent_model(intent_type: str) -> Any:
    name = "".join(part.title() for part in intent_type.split("_")) + "Intent"
    tag: Any = Literal.__getitem__(intent_type)
    return create_model(
        name,
        __base__=_ProducerCommon,
        type=(tag, ...),
        data=(DATA_MODELS[intent_type], _data_default(intent_type)),
    )


_MODELS = tuple(_intent_model(t) for t in PRODUCER_TYPES)
ProducerIntent: Any = Annotated[Union.__getitem__(_MODELS), Field(discriminator="type")]
ProducerEnvelope: type[_Wire] = create_model(
    "Envelope",
    __base__=_Wire,
    __doc__="The v1 envelope as a producer sends it.",
    version=(Literal[1], 1),
    workflow_id=(uuid.UUID, ...),
    intent=(ProducerIntent, ...),
    enqueued_at=(datetime | None, None),
)


_BARE: TypeAdapter[Any] = TypeAdapter(ProducerIntent)


def _is_envelope(decoded: dict[str, Any]) -> bool:
    return "intent" in decoded or "workflowId" in decoded or "version" in decoded


def admit(
    decoded: Any,
    message_id: str | None = None,
    *,
    providers: Collection[str] | None = None,
    trusted: bool = False,
    shallow: bool = False,
) -> Envelope:
    """An envelope the worker will serve, or ``MalformedMessage`` saying why.

    A bare intent gets ``message_id`` as its workflow id (uuid5 of it when it is not
    a uuid) or, at the door (no message id yet), a new one. ``providers`` are the
    configured LLM providers (None: not checked). The worker leaves them to
    ``LLM.order``, which refuses a forced provider it lacks before any call, with the
    same words: a dead-lettered workflow an operator can replay once it is configured.
    ``shallow``: the caller knows the body cannot nest too deep (the depth walk is spared)."""
    decoded, message_id = unwrap(decoded, message_id)
    if not isinstance(decoded, dict):
        raise MalformedMessage(
            f"body must be a JSON object, got {type(decoded).__name__}", code="not_object"
        )
    if not shallow and _depth(decoded, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise MalformedMessage(f"body nests deeper than {MAX_JSON_DEPTH} levels", code="too_deep")
    envelope_shape = _is_envelope(decoded)
    intent = decoded.get("intent") if envelope_shape else decoded
    internal = isinstance(intent, dict) and intent.get("type") in INTERNAL_TYPES
    checked = not (internal and trusted)
    try:
        if checked:
            if envelope_shape:
                ProducerEnvelope.model_validate(decoded)
            else:
                _BARE.validate_python(decoded)
        if envelope_shape:
            envelope = Envelope.model_validate(decoded)
        else:
            envelope = Envelope(workflow_id=_workflow_id(message_id), intent=decoded)
    except ValidationError as exc:
        raise MalformedMessage(
            describe(exc, "" if envelope_shape else "intent"), code=_code(exc)
        ) from exc
    if checked:
        _checked(envelope)
    force = envelope.intent.force_provider
    if force and providers is not None and force not in providers:
        raise MalformedMessage(  # the words of ``LLM.order``, which checks it in the worker
            f"forceProvider {force!r} is not configured on this fleet",
            code="provider_not_configured",
        )
    return envelope


def _checked(envelope: Envelope) -> None:
    """Mark producer ``data`` as validated for its type (``served`` skips the second pass)."""
    intent = envelope.intent
    if intent.type in DATA_MODELS:
        intent.__dict__["data"] = CheckedData(intent.data, intent.type)


def unwrap(decoded: Any, message_id: str | None) -> tuple[Any, str | None]:
    """The intent inside an SNS notification (raw delivery off) or an EventBridge event
    delivered to the queue, with the wrapper's id (a redelivered notification keeps it, so
    a bare intent in it keeps its workflow id); anything else as it is."""
    if not isinstance(decoded, dict):
        return decoded, message_id
    if decoded.get("Type") == "Notification" and isinstance(decoded.get("Message"), str):
        try:
            inner = json.loads(decoded["Message"])
        except (ValueError, RecursionError) as exc:
            raise MalformedMessage(
                f"SNS notification's Message is not JSON: {str(exc)[:120]}", code="not_json"
            ) from exc
        return inner, str(decoded.get("MessageId") or message_id)
    if "detail-type" in decoded and "detail" in decoded and "source" in decoded:
        return decoded["detail"], str(decoded.get("id") or message_id)
    return decoded, message_id


def parse_message(
    body: str,
    message_id: str,
    *,
    providers: Collection[str] | None = None,
    trusted: bool = False,
) -> Envelope:
    """Turn an SQS body into an Envelope or raise MalformedMessage saying why."""
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise MalformedMessage(f"body is not JSON: {str(exc)[:120]}", code="not_json") from exc
    shallow = body.count("{") + body.count("[") < MAX_JSON_DEPTH  # fewer openers than levels
    return admit(decoded, message_id, providers=providers, trusted=trusted, shallow=shallow)


def _workflow_id(message_id: str | None) -> uuid.UUID:
    if message_id is None:
        return uuid.uuid4()
    try:
        return uuid.UUID(message_id)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"sqs:{message_id}")


def _code(exc: ValidationError) -> str:
    errors = exc.errors()
    if any(e["type"] == "union_tag_invalid" for e in errors):
        return "unknown_intent"
    if all("data" in e["loc"][:3] for e in errors):
        return "invalid_data"
    return "schema"


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


def json_schema() -> dict[str, Any]:
    """The published contract: an envelope or a bare intent, ``data`` per type."""
    envelope = ProducerEnvelope.model_json_schema(by_alias=True, mode="validation")
    defs = envelope.pop("$defs", {})
    defs["Envelope"] = envelope
    bare = _BARE.json_schema(by_alias=True, mode="validation", ref_template="#/$defs/{model}")
    defs.update(bare.pop("$defs", {}))
    defs["Intent"] = bare
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://huntaze.example/schemas/hybrid-orchestrator/intent-message.v1.json",
        "title": "Hybrid Orchestrator intent message (v1)",
        "description": (
            "An SQS message body: the v1 envelope, or a bare intent whose SQS MessageId "
            "becomes its workflowId. `data` is free-form per type: the known keys (in any "
            "of their spellings) are typed and bounded; other keys are passed as context."
        ),
        "oneOf": [{"$ref": "#/$defs/Envelope"}, {"$ref": "#/$defs/Intent"}],
        "$defs": defs,
    }
