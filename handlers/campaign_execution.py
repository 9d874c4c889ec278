"""campaign_execution: one personalised message and one send per recipient.

``data`` keys: recipients (or recipientIds, fans, fanIds, audienceIds; required:
ids, or objects with id/fanId/recipientId/userId and an optional name), a brief
(or template, messageTemplate, message, goal, prompt); every other key is passed
as details, and a recipient object's other keys as that recipient's details.

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
from worker.contract import Intent, Recipient, Served, served

_BATCH_KEYS = ("campaignId", "parentId", "total")


class BatchMarks(BaseModel):
    """What a ``campaign_batch`` carries besides the campaign's own data."""

    campaign_id: str = Field(alias="campaignId", min_length=1)
    parent_id: str = Field(alias="parentId", min_length=1)
    total: int = Field(ge=1)


async def handle(intent: Intent, ctx: HandlerContext) -> dict[str, Any]:
    request = served("campaign_execution", intent.data)
    recipients = request.recipients()
    if len(recipients) <= ctx.campaign_chunk:
        messages = await _run_chunk(intent, ctx, request, recipients, ctx.workflow_id)
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
        data: dict[str, Any] = {"recipients": [r.wire() for r in chunk]}
        if request.text("brief"):
            data["brief"] = request.text("brief")
        data["details"] = request.context
        data.update(campaignId=ctx.workflow_id, parentId=ctx.workflow_id, total=len(recipients))
        child = Intent(
            type="campaign_batch",
            user_id=intent.user_id,
            priority=intent.priority,
            trace_context=intent.trace_context,
            data=data,
        )
        await ctx.spawn(child, uuid.uuid5(uuid.NAMESPACE_URL, f"{ctx.workflow_id}:{index}"))
    return {
        "campaignId": ctx.workflow_id,
        "recipients": len(recipients),
        "chunks": len(chunks),
        "fannedOut": True,
    }


async def handle_batch(intent: Intent, ctx: HandlerContext) -> dict[str, Any]:
    marks = parse_data(intent, BatchMarks)
    data = {k: v for k, v in intent.data.items() if k not in _BATCH_KEYS and k != "details"}
    request = served("campaign_execution", data)
    details = intent.data.get("details")
    if isinstance(details, dict):  # the parent's context, bounded already
        request = Served(request.known, {str(k): str(v) for k, v in details.items()})
    recipients = request.recipients()
    messages = await _run_chunk(intent, ctx, request, recipients, marks.campaign_id)
    await ctx.require_sends().record_progress(marks.campaign_id, marks.total)
    return {"campaignId": marks.campaign_id, "recipients": len(messages)}


async def _run_chunk(
    intent: Intent,
    ctx: HandlerContext,
    request: Served,
    recipients: list[Recipient],
    campaign_id: str,
) -> list[dict[str, Any]]:
    """Generate and schedule one message per recipient, a bounded number at a time."""
    sends = ctx.require_sends()
    gate = asyncio.Semaphore(ctx.campaign_concurrency)
    prompt = system_prompt("campaign_execution", version=ctx.prompt_version)
    brief = request.text("brief", "a friendly personal message from the creator")

    async def one(recipient: Recipient) -> dict[str, Any]:
        user = {
            "brief": brief,
            "recipientId": recipient.id,
            "fanName": recipient.name,
            "fanDetails": recipient.details,
            "details": request.context,
        }
        async with gate:
            response = await ctx.llm.complete(
                [
                    {"role": "system", "content": prompt},
                    {"role": "user", "content": json.dumps(user, ensure_ascii=False)},
                ],
                max_tokens=200,
            )
            text = response.content.strip()
            send = await sends.schedule(
                workflow_id=ctx.workflow_id,
                user_id=intent.user_id,
                recipient_id=recipient.id,
                message=text,
                campaign_id=campaign_id,
            )
        return {"recipientId": recipient.id, "message": text, "sendId": send["sendId"]}

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(r)) for r in recipients]
    except ExceptionGroup as failures:  # the consumer classifies one error, the first
        raise failures.exceptions[0] from None
    return [task.result() for task in tasks]
