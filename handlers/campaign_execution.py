"""campaign_execution: one personalised message and one send per recipient.

A campaign of up to FLEET_CAMPAIGN_CHUNK recipients is done in this message.
A larger one fans out: the campaign's message only splits the recipients into
``campaign_batch`` child workflows (ids derived from the campaign id, so a
re-run spawns the same children), each of which generates and schedules its
chunk. Sends are keyed by (campaign, recipient): a recipient gets one message
per campaign, whatever is retried. Progress is recounted on the campaign's
workflow row; ``fleet status <campaign-id>`` shows the sends by status.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from pydantic import BaseModel, Field

from handlers.base import HandlerContext, parse_data, system_prompt
from worker.contract import Intent


class CampaignRequest(BaseModel):
    brief: str = Field(min_length=1, max_length=4000)
    recipients: list[str] = Field(min_length=1, max_length=10_000)


class BatchRequest(CampaignRequest):
    campaign_id: str = Field(alias="campaignId", min_length=1)
    parent_id: str = Field(alias="parentId", min_length=1)
    total: int = Field(ge=1)


async def handle(intent: Intent, ctx: HandlerContext) -> dict[str, Any]:
    request = parse_data(intent, CampaignRequest)
    recipients = list(dict.fromkeys(request.recipients))
    if len(recipients) <= ctx.campaign_chunk:
        messages = await _run_chunk(intent, ctx, request.brief, recipients, ctx.workflow_id)
        await ctx.require_sends().record_progress(ctx.workflow_id, len(recipients))
        return {
            "campaignId": ctx.workflow_id,
            "recipients": len(messages),
            "chunks": 0,
            "messages": messages,
        }
    chunks = [
        recipients[i : i + ctx.campaign_chunk]
        for i in range(0, len(recipients), ctx.campaign_chunk)
    ]
    for index, chunk in enumerate(chunks):
        child = Intent(
            type="campaign_batch",
            user_id=intent.user_id,
            priority=intent.priority,
            trace_context=intent.trace_context,
            data={
                "brief": request.brief,
                "recipients": chunk,
                "campaignId": ctx.workflow_id,
                "parentId": ctx.workflow_id,
                "total": len(recipients),
            },
        )
        await ctx.spawn(child, uuid.uuid5(uuid.NAMESPACE_URL, f"{ctx.workflow_id}:{index}"))
    return {
        "campaignId": ctx.workflow_id,
        "recipients": len(recipients),
        "chunks": len(chunks),
        "fannedOut": True,
    }


async def handle_batch(intent: Intent, ctx: HandlerContext) -> dict[str, Any]:
    request = parse_data(intent, BatchRequest)
    messages = await _run_chunk(intent, ctx, request.brief, request.recipients, request.campaign_id)
    await ctx.require_sends().record_progress(request.campaign_id, request.total)
    return {"campaignId": request.campaign_id, "recipients": len(messages)}


async def _run_chunk(
    intent: Intent, ctx: HandlerContext, brief: str, recipients: list[str], campaign_id: str
) -> list[dict[str, Any]]:
    """Generate and schedule one message per recipient, a bounded number at a time."""
    sends = ctx.require_sends()
    gate = asyncio.Semaphore(ctx.campaign_concurrency)
    prompt = system_prompt("campaign_execution")

    async def one(recipient: str) -> dict[str, Any]:
        async with gate:
            response = await ctx.llm.complete(
                [
                    {"role": "system", "content": prompt},
                    {
                        "role": "user",
                        "content": json.dumps({"brief": brief, "recipientId": recipient}),
                    },
                ],
                max_tokens=200,
            )
            text = response.content.strip()
            send = await sends.schedule(
                workflow_id=ctx.workflow_id,
                user_id=intent.user_id,
                recipient_id=recipient,
                message=text,
                campaign_id=campaign_id,
            )
        return {"recipientId": recipient, "message": text, "sendId": send["sendId"]}

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(r)) for r in recipients]
    except ExceptionGroup as failures:  # the consumer classifies one error, the first
        raise failures.exceptions[0] from None
    return [task.result() for task in tasks]
