"""content_validation: a structured verdict on a piece of content.

``data`` keys: the content (or text, caption, body, draft, post, message;
required), rules (or guidelines, policies, ...: text or a list); every other key
is passed as details.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from handlers.base import HandlerContext, system_prompt
from worker.contract import Intent, served


class Verdict(BaseModel):
    approved: bool
    score: float = Field(ge=0, le=1)
    issues: list[str] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list)


async def handle(intent: Intent, ctx: HandlerContext) -> dict[str, Any]:
    request = served("content_validation", intent.data)
    user = {
        "content": request.text("content"),
        "rules": request.texts("rules"),
        "platforms": intent.platforms,
        "contentType": intent.content_type,
        "details": request.context,
    }
    verdict = await ctx.llm.complete_structured(
        [
            {
                "role": "system",
                "content": system_prompt("content_validation", Verdict, ctx.prompt_version),
            },
            {"role": "user", "content": json.dumps(user, ensure_ascii=False)},
        ],
        Verdict,
    )
    return {"verdict": verdict.model_dump()}
