"""content_planning: a structured posting plan, validated with pydantic.

``data`` keys (any spelling in ``worker.contract.data.FIELDS``): a goal (or goals,
objective, topic, ...), days (1-31, default 7), an audience; every other key is
passed as details. With none of them the plan follows the platforms alone.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from handlers.base import HandlerContext, system_prompt
from worker.contract import Intent, served


class PlanItem(BaseModel):
    day: int = Field(ge=1, le=31)
    platform: str = Field(min_length=1)
    format: str = Field(min_length=1)
    idea: str = Field(min_length=1)


class ContentPlan(BaseModel):
    title: str = Field(min_length=1)
    items: list[PlanItem] = Field(min_length=1)


async def handle(intent: Intent, ctx: HandlerContext) -> dict[str, Any]:
    request = served("content_planning", intent.data)
    platforms = intent.platforms or ["onlyfans"]
    user = {
        "goal": request.text("goal", "a varied plan that grows engagement"),
        "days": request.number("days", 7),
        "platforms": platforms,
        "audience": request.text("audience"),
        "contentType": intent.content_type,
        "details": request.context,
    }
    plan = await ctx.llm.complete_structured(
        [
            {
                "role": "system",
                "content": system_prompt("content_planning", ContentPlan, ctx.prompt_version),
            },
            {"role": "user", "content": json.dumps(user, ensure_ascii=False)},
        ],
        ContentPlan,
    )
    return {"plan": plan.model_dump()}
