"""onlyfans_send (internal): deliver one scheduled send on its slot."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from handlers.base import HandlerContext, parse_data
from worker.contract import Intent


class SendRequest(BaseModel):
    send_id: int = Field(alias="sendId", ge=1)


async def handle(intent: Intent, ctx: HandlerContext) -> dict[str, Any]:
    request = parse_data(intent, SendRequest)
    return await ctx.require_sends().deliver(request.send_id)
