"""Handlers, one module per intent type, dispatched through ``REGISTRY``.

The registry holds exactly the intent types of the contract (producer types and
internal steps; a unit test checks it). ``handler_for`` never raises anything but
``MalformedMessage``: a type without a handler is a DLQ case, not a crash.
"""

from __future__ import annotations

from handlers import (
    campaign_execution,
    content_planning,
    content_validation,
    message_generation,
    onlyfans_send,
)
from handlers.base import Handler, HandlerContext
from worker.errors import MalformedMessage

__all__ = ["REGISTRY", "Handler", "HandlerContext", "handler_for"]

REGISTRY: dict[str, Handler] = {
    "content_planning": content_planning.handle,
    "message_generation": message_generation.handle,
    "content_validation": content_validation.handle,
    "campaign_execution": campaign_execution.handle,
    "campaign_batch": campaign_execution.handle_batch,
    "onlyfans_send": onlyfans_send.handle,
}


def handler_for(intent_type: str) -> Handler:
    """The handler of an intent type; ``MalformedMessage`` when there is none."""
    handler = REGISTRY.get(intent_type)
    if handler is None:
        raise MalformedMessage(f"no handler for intent type {intent_type!r}", code="unknown_intent")
    return handler
