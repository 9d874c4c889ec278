"""message_generation: one message text for one fan."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from handlers.base import HandlerContext, parse_data, system_prompt
from worker.contract import Intent
from worker.errors import InvalidOutput, MalformedMessage


class MessageRequest(BaseModel):
    context: str = Field(min_length=1, max_length=4000)
    fan_name: str | None = Field(None, max_length=100, alias="fanName")
    tone: str = Field("friendly", max_length=50)
    max_chars: int = Field(500, ge=20, le=2000, alias="maxChars")
    debounce: Literal["replace"] | None = None


async def handle(intent: Intent, ctx: HandlerContext) -> dict[str, Any]:
    request = parse_data(intent, MessageRequest)
    user = {
        "context": request.context,
        "fanName": request.fan_name,
        "tone": request.tone,
        "maxChars": request.max_chars,
    }
    response = await ctx.llm.complete(
        [
            {"role": "system", "content": system_prompt("message_generation")},
            {"role": "user", "content": json.dumps(user)},
        ],
        max_tokens=max(32, request.max_chars // 2),
    )
    text = response.content.strip()[: request.max_chars]
    if not text:
        raise InvalidOutput("the model returned an empty message")
    result: dict[str, Any] = {
        "message": text,
        "recipientId": intent.recipient_id,
        "sendToOnlyFans": intent.send_to_only_fans,
    }
    if intent.send_to_only_fans:
        if not intent.recipient_id:
            raise MalformedMessage(
                "intent.recipientId: required when sendToOnlyFans is true", code="invalid_data"
            )
        result["send"] = await ctx.require_sends().schedule(
            workflow_id=ctx.workflow_id,
            user_id=intent.user_id,
            recipient_id=intent.recipient_id,
            message=text,
            replace=request.debounce == "replace",
        )
    return result
