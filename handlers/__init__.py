"""Handlers, one module per intent type, dispatched through ``REGISTRY``."""

from __future__ import annotations

from handlers import (
    campaign_execution,
    content_planning,
    content_validation,
    message_generation,
    onlyfans_send,
)
from handlers.base import Handler, HandlerContext

__all__ = ["REGISTRY", "Handler", "HandlerContext"]

REGISTRY: dict[str, Handler] = {
    "content_planning": content_planning.handle,
    "message_generation": message_generation.handle,
    "content_validation": content_validation.handle,
    "campaign_execution": campaign_execution.handle,
    "campaign_batch": campaign_execution.handle_batch,
    "onlyfans_send": onlyfans_send.handle,
}
