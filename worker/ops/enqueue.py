"""Producer side: validate intents before they are sent, then send in batches."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from worker.contract import Envelope, Intent, encode_envelope, message_attributes
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
    max_bytes: int,
    on_sent: Callable[[int], None] | None = None,
    parallel: int = 4,
) -> list[str]:
    """Send every envelope (batches of 10, ``parallel`` batches at once); return message ids."""
    by_lane: dict[LaneName, list[int]] = {}
    for index, env in enumerate(envelopes):
        by_lane.setdefault(queue.lane_for(env.intent.priority), []).append(index)
    bodies = [(encode_envelope(env, max_bytes), message_attributes(env)) for env in envelopes]
    batches: list[tuple[LaneName, list[int]]] = [
        (lane, indexes[i : i + 10])
        for lane, indexes in by_lane.items()
        for i in range(0, len(indexes), 10)
    ]
    ids: list[str] = [""] * len(envelopes)
    gate = asyncio.Semaphore(parallel)

    async def send(index: int) -> None:
        lane, members = batches[index]
        async with gate:
            sent = await queue.send_batch([bodies[i] for i in members], lane)
        for member, message_id in zip(members, sent, strict=True):
            ids[member] = message_id
        if on_sent is not None:
            on_sent(len(members))

    async with asyncio.TaskGroup() as group:
        for index in range(len(batches)):
            group.create_task(send(index))
    return ids
