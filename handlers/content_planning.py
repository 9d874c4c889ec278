"""content_planning: a structured posting plan, validated with pydantic."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from handlers.base import HandlerContext, parse_data, system_prompt
from worker.contract import Intent


class PlanRequest(BaseModel):
    goal: str = Field(min_length=1, max_length=2000)
    days: int = Field(7, ge=1, le=31)
    audience: str | None = Field(None, max_length=500)


class PlanItem(BaseModel):
    day: int = Field(ge=1, le=31)
    platform: str = Field(min_length=1)
    format: str = Field(min_length=1)
    idea: str = Field(min_length=1)


class ContentPlan(BaseModel):
    title: str = Field(min_length=1)
    items: list[PlanItem] = Field(min_length=1)


async def handle(intent: Intent, ctx: HandlerContext) -> dict[str, Any]:
    request = parse_data(intent, PlanRequest)
    platforms = intent.platforms or ["onlyfans"]
    user = {
        "goal": request.goal,
        "days": request.days,
        "platforms": platforms,
        "audience": request.audience,
        "contentType": intent.content_type,
    }
    plan = await ctx.llm.complete_structured(
        [
            {"role": "system", "content": system_prompt("content_planning", ContentPlan)},
            {"role": "user", "content": json.dumps(user)},
        ],
        ContentPlan,
    )
    return {"plan": plan.model_dump()}
