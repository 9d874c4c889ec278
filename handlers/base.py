"""What a handler gets and returns. Handlers know nothing of SQS."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from worker.contract import Intent
from worker.errors import MalformedMessage
from worker.providers import LLMSession

__all__ = ["Handler", "HandlerContext", "load_prompt", "parse_data", "system_prompt"]

D = TypeVar("D", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """The parts a handler may use: the LLM for this workflow and a few knobs."""

    workflow_id: str
    llm: LLMSession
    campaign_concurrency: int = 8


Handler = Callable[[Intent, HandlerContext], Awaitable[dict[str, Any]]]


@cache
def load_prompt(name: str) -> str:
    """The prompt text that lives beside the handlers (``handlers/prompts/NAME.md``)."""
    return (resources.files("handlers") / "prompts" / f"{name}.md").read_text()


def system_prompt(name: str, schema: type[BaseModel] | None = None) -> str:
    text = load_prompt(name)
    if schema is not None:
        text += "\n\nReply with one JSON object matching this JSON Schema:\n"
        text += json.dumps(schema.model_json_schema(), separators=(",", ":"))
    return text


def parse_data(intent: Intent, model: type[D]) -> D:
    """Validate ``intent.data`` for this handler; bad data is a malformed message."""
    try:
        return model.model_validate(intent.data)
    except ValidationError as exc:
        detail = "; ".join(
            f"intent.data.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise MalformedMessage(detail, code="invalid_data") from exc
