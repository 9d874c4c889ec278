"""Producer side: admit intents exactly as the worker will, then send in batches.

``envelope_from_json`` runs ``worker.contract.admit``, the worker's own check
(same models, same intent-level rules, same reason), with the LLM providers this
configuration has (``configured_providers``), so a forced provider the fleet
lacks is refused before anything is spent.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from worker.config import Settings
from worker.contract import Envelope, admit
from worker.errors import EnqueueRefused, MalformedMessage
from worker.queue import LaneName, QueueClient, encode_body

__all__ = [
    "EnqueueLine",
    "configured_providers",
    "enqueue_envelopes",
    "envelope_from_json",
    "read_jsonl",
]


def configured_providers(settings: Settings) -> frozenset[str]:
    """The LLM providers a worker with these settings has (as ``run_worker`` builds them)."""
    names = set()
    if settings.openai_api_key is not None:
        names.add("openai")
    if settings.azure_openai_endpoint and (
        settings.azure_openai_api_key or settings.azure_openai_ad_token
    ):
        names.add("azure")
    return frozenset(names)


def envelope_from_json(value: Any, providers: frozenset[str] | None = None) -> Envelope:
    """An envelope from decoded JSON (a full envelope, or a bare intent wrapped in one
    with a new workflow id), admitted by the worker's own check: ``EnqueueRefused``
    carries the worker's reason and code."""
    try:
        envelope = admit(value, providers=providers)
    except MalformedMessage as exc:
        raise EnqueueRefused(str(exc), code=exc.code) from exc
    if envelope.enqueued_at is None:
        envelope = envelope.model_copy(update={"enqueued_at": datetime.now(UTC)})
    return envelope


@dataclass(frozen=True, slots=True)
class EnqueueLine:
    """One JSONL line: its envelope, or why it was refused and where (1-based)."""

    number: int
    envelope: Envelope | None
    error: str | None
    column: int = 1
    code: str = "invalid"


def read_jsonl(
    lines: Iterable[str], providers: frozenset[str] | None = None
) -> Iterator[EnqueueLine]:
    """Each non-blank line of JSONL text, admitted, with its line number; a line that is
    not JSON says where (line and column)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            decoded = json.loads(line)
        except json.JSONDecodeError as exc:
            yield EnqueueLine(number, None, f"not JSON: {exc.msg}", exc.colno, "not_json")
            continue
        try:
            yield EnqueueLine(number, envelope_from_json(decoded, providers), None)
        except EnqueueRefused as exc:
            column = len(line) - len(line.lstrip()) + 1
            yield EnqueueLine(number, None, str(exc), column, exc.code)


async def enqueue_envelopes(
    queue: QueueClient,
    envelopes: list[Envelope],
    *,
    on_sent: Callable[[int], None] | None = None,
    parallel: int = 4,
) -> list[str]:
    """Send every envelope (batches of 10 per lane, ``parallel`` batches at once) through
    ``QueueClient.send_envelopes``; return message ids. Every body is size-checked (against
    the queue client's ``max_message_bytes``, or what may go as an S3 pointer when it has a
    payload bucket) before the first is sent. On a FIFO queue the batches go one after
    another, so each group keeps the order of the input."""
    if queue.fifo:
        parallel = 1
    for env in envelopes:
        encode_body(env, queue.max_message_bytes, bucket=queue.payloads.bucket)
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
