"""campaign_execution: one personalised message per recipient.

Recipients are generated concurrently, bounded by FLEET_CAMPAIGN_CONCURRENCY;
the first failure cancels the rest and the whole campaign is retried (the
send step and its per-recipient ledger make a retried campaign safe).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from pydantic import BaseModel, Field

from handlers.base import HandlerContext, parse_data, system_prompt
from worker.contract import Intent


class CampaignRequest(BaseModel):
    brief: str = Field(min_length=1, max_length=4000)
    recipients: list[str] = Field(min_length=1, max_length=10_000)


async def handle(intent: Intent, ctx: HandlerContext) -> dict[str, Any]:
    request = parse_data(intent, CampaignRequest)
    gate = asyncio.Semaphore(ctx.campaign_concurrency)
    prompt = system_prompt("campaign_execution")

    async def one(recipient: str) -> dict[str, str]:
        async with gate:
            response = await ctx.llm.complete(
                [
                    {"role": "system", "content": prompt},
                    {
                        "role": "user",
                        "content": json.dumps({"brief": request.brief, "recipientId": recipient}),
                    },
                ],
                max_tokens=200,
            )
        return {"recipientId": recipient, "message": response.content.strip()}

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(r)) for r in dict.fromkeys(request.recipients)]
    except ExceptionGroup as failures:  # the consumer classifies one error, the first
        raise failures.exceptions[0] from None
    messages = [task.result() for task in tasks]
    return {"messages": messages, "recipients": len(messages)}
