"""Producer side: validate intents before they are sent, then send in batches."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from worker.contract import Envelope, Intent, encode_envelope
from worker.errors import EnqueueRefused
from worker.queue import LaneName, QueueClient

__all__ = ["EnqueueLine", "enqueue_envelopes", "envelope_from_json", "read_jsonl"]


def envelope_from_json(value: Any) -> Envelope:
    """An envelope from decoded JSON: a full envelope, or a bare intent wrapped in one."""
    if not isinstance(value, dict):
        raise EnqueueRefused(f"expected a JSON object, got {type(value).__name__}")
    try:
        if "intent" in value:
            return Envelope.model_validate(value)
        return Envelope.wrap(Intent.model_validate(value))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise EnqueueRefused(problems, code="invalid") from exc


@dataclass(frozen=True, slots=True)
class EnqueueLine:
    number: int
    envelope: Envelope | None
    error: str | None


def read_jsonl(path: Path) -> Iterator[EnqueueLine]:
    """Each non-blank line of a JSONL file, parsed and validated, with its line number."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield EnqueueLine(number, envelope_from_json(json.loads(line)), None)
            except json.JSONDecodeError as exc:
                yield EnqueueLine(number, None, f"not JSON: {exc.msg} (column {exc.colno})")
            except EnqueueRefused as exc:
                yield EnqueueLine(number, None, str(exc))


async def enqueue_envelopes(
    queue: QueueClient,
    envelopes: list[Envelope],
    *,
    on_sent: Callable[[int], None] | None = None,
    parallel: int = 4,
) -> list[str]:
    """Send every envelope (batches of 10 per lane, ``parallel`` batches at once) through
    ``QueueClient.send_envelopes``; return message ids. Every body is size-checked (against
    the queue client's ``max_message_bytes``) before the first is sent."""
    for env in envelopes:
        encode_envelope(env, queue.max_message_bytes)
    by_lane: dict[LaneName, list[int]] = {}
    for index, env in enumerate(envelopes):
        by_lane.setdefault(queue.lane_for(env.intent.priority), []).append(index)
    batches = [
        indexes[i : i + 10] for indexes in by_lane.values() for i in range(0, len(indexes), 10)
    ]
    ids: list[str] = [""] * len(envelopes)
    gate = asyncio.Semaphore(parallel)

    async def send(index: int) -> None:
        members = batches[index]
        async with gate:
            sent = await queue.send_envelopes([envelopes[i] for i in members])
        for member, message_id in zip(members, sent, strict=True):
            ids[member] = message_id
        if on_sent is not None:
            on_sent(len(members))

    async with asyncio.TaskGroup() as group:
        for index in range(len(batches)):
            group.create_task(send(index))
    return ids
