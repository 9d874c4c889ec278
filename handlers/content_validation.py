"""content_validation: a structured verdict on a piece of content."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from handlers.base import HandlerContext, parse_data, system_prompt
from worker.contract import Intent


class ValidationRequest(BaseModel):
    content: str = Field(min_length=1, max_length=20_000)
    rules: list[str] = Field(default_factory=list, max_length=50)


class Verdict(BaseModel):
    approved: bool
    score: float = Field(ge=0, le=1)
    issues: list[str] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list)


async def handle(intent: Intent, ctx: HandlerContext) -> dict[str, Any]:
    request = parse_data(intent, ValidationRequest)
    user = {"content": request.content, "rules": request.rules, "platforms": intent.platforms}
    verdict = await ctx.llm.complete_structured(
        [
            {"role": "system", "content": system_prompt("content_validation", Verdict)},
            {"role": "user", "content": json.dumps(user)},
        ],
        Verdict,
    )
    return {"verdict": verdict.model_dump()}
