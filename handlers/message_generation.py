"""message_generation: one message text for one fan."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from handlers.base import HandlerContext, parse_data, system_prompt
from worker.contract import Intent
from worker.errors import InvalidOutput


class MessageRequest(BaseModel):
    context: str = Field(min_length=1, max_length=4000)
    fan_name: str | None = Field(None, max_length=100, alias="fanName")
    tone: str = Field("friendly", max_length=50)
    max_chars: int = Field(500, ge=20, le=2000, alias="maxChars")


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
    text = response.content.strip()
    if not text:
        raise InvalidOutput("the model returned an empty message")
    return {
        "message": text[: request.max_chars],
        "recipientId": intent.recipient_id,
        "sendToOnlyFans": intent.send_to_only_fans,
    }
