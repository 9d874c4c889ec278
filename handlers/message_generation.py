"""message_generation: one message text for one fan.

``data`` keys: a context (or conversation, messages, history, lastMessage,
prompt: text, a list of messages, or an object), fanName (or name, ...), tone
(or style, mood), maxChars (or maxLength; 20-2000, default 500), debounce;
every other key is passed as details. ``sendToOnlyFans`` needs ``recipientId``
(checked at the door and on receipt, before any LLM call).
"""

from __future__ import annotations

import json
from typing import Any

from handlers.base import HandlerContext, system_prompt
from worker.contract import Intent, served
from worker.errors import InvalidOutput, MalformedMessage


async def handle(intent: Intent, ctx: HandlerContext) -> dict[str, Any]:
    request = served("message_generation", intent.data)
    max_chars = request.number("max_chars", 500)
    user = {
        "context": request.text("context"),
        "fanName": request.text("fan_name"),
        "tone": request.text("tone", "friendly"),
        "maxChars": max_chars,
        "details": request.context,
    }
    response = await ctx.llm.complete(
        [
            {
                "role": "system",
                "content": system_prompt("message_generation", version=ctx.prompt_version),
            },
            {"role": "user", "content": json.dumps(user, ensure_ascii=False)},
        ],
        max_tokens=max(32, max_chars // 2),
    )
    text = response.content.strip()[:max_chars]
    if not text:
        raise InvalidOutput("the model returned an empty message")
    result: dict[str, Any] = {
        "message": text,
        "recipientId": intent.recipient_id,
        "sendToOnlyFans": intent.send_to_only_fans,
    }
    if intent.send_to_only_fans:
        if not intent.recipient_id:  # admitted messages never get here (worker.contract.door)
            raise MalformedMessage(
                "intent.recipientId: required when sendToOnlyFans is true (the fan to send to)",
                code="schema",
            )
        result["send"] = await ctx.require_sends().schedule(
            workflow_id=ctx.workflow_id,
            user_id=intent.user_id,
            recipient_id=intent.recipient_id,
            message=text,
            replace=request.known.get("debounce") == "replace",
        )
    return result
