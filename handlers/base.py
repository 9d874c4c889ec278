"""What a handler gets and returns. Handlers know nothing of SQS."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from worker.contract import Intent
from worker.errors import MalformedMessage, PermanentError
from worker.providers import LLMSession
from worker.sends import Sends

__all__ = ["Handler", "HandlerContext", "Spawn", "load_prompt", "parse_data", "system_prompt"]

D = TypeVar("D", bound=BaseModel)


Spawn = Callable[[Intent, uuid.UUID], Awaitable[None]]


async def _no_spawn(intent: Intent, workflow_id: uuid.UUID) -> None:
    raise PermanentError("this context cannot start child workflows", code="no_spawn")


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """The parts a handler may use: the LLM for this workflow, sends, child workflows."""

    workflow_id: str
    llm: LLMSession
    sends: Sends | None = None
    spawn: Spawn = _no_spawn
    campaign_concurrency: int = 8
    campaign_chunk: int = 50
    prompt_version: str | None = None  # the A/B variant's prompt (``NAME.VERSION.md``)

    def require_sends(self) -> Sends:
        if self.sends is None:
            raise PermanentError(
                "sending is not configured: set FLEET_SEND_GATEWAY_URL", code="send_not_configured"
            )
        return self.sends


Handler = Callable[[Intent, HandlerContext], Awaitable[dict[str, Any]]]


@cache
def load_prompt(name: str) -> str:
    """The prompt text that lives beside the handlers (``handlers/prompts/NAME.md``)."""
    return (resources.files("handlers") / "prompts" / f"{name}.md").read_text()


@cache
def system_prompt(
    name: str, schema: type[BaseModel] | None = None, version: str | None = None
) -> str:
    """The prompt file (``NAME.VERSION.md`` for an A/B variant's version), with the
    reply's JSON Schema when the reply is structured. Built once per (prompt, schema,
    version): pydantic's schema generation costs about a millisecond."""
    text = load_prompt(f"{name}.{version}" if version else name)
    if schema is not None:
        text += "\n\nReply with one JSON object matching this JSON Schema:\n"
        text += json.dumps(schema.model_json_schema(), separators=(",", ":"))
    return text


def parse_data(intent: Intent, model: type[D]) -> D:
    """Validate an internal step's ``data`` (producer types use ``worker.contract.served``)."""
    try:
        return model.model_validate(intent.data)
    except ValidationError as exc:
        detail = "; ".join(
            f"intent.data.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise MalformedMessage(detail, code="invalid_data") from exc
