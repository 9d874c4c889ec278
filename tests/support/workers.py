"""Helpers the tests share: queues, envelopes, in-process workers, provider settings."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from devstack import FakeLLM
from worker.config import Settings
from worker.consumer import FleetStats, run_worker
from worker.contract import Envelope, Intent
from worker.queue import QueueClient

API_KEY = "sk-test-fleet-secret-key-1234567890"
Factory = Callable[..., Awaitable[Settings]]


def queue_for(settings: Settings) -> QueueClient:
    return QueueClient.from_settings(settings)


def envelope(intent: dict[str, Any], workflow_id: uuid.UUID | None = None) -> Envelope:
    return Envelope.wrap(Intent.model_validate(intent), workflow_id)


async def send_bodies(settings: Settings, bodies: list[str | Envelope]) -> None:
    async with queue_for(settings) as queue:
        for body in bodies:
            if isinstance(body, Envelope):
                await queue.send_envelope(body)
            else:  # a raw body, as it is (malformed on purpose, bare intents)
                await queue.send(body, {})


async def drain(settings: Settings) -> FleetStats:
    """Run one in-process worker until its queue is empty."""
    return await run_worker(settings, until_idle=True, handle_signals=False)


async def dlq_messages(settings: Settings) -> list[Any]:
    async with queue_for(settings) as queue:
        found: dict[str, Any] = {}
        for _ in range(5):
            for message in await queue.receive_dlq(10, 1):
                found[message.message_id] = message
            depth = await queue.depth(dlq=True)
            if depth.visible == 0:
                break
        return list(found.values())


async def run_until(
    settings: Settings, done: Callable[[], Awaitable[bool]], within: float = 60
) -> FleetStats:
    """Run one in-process worker until ``done()`` says so (checked every 0.2 s)."""
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, handle_signals=False, stop=stop))
    try:
        async with asyncio.timeout(within):
            while not await done():
                if worker.done():
                    break
                await asyncio.sleep(0.2)
    finally:
        stop.set()
    return await worker


def provider_settings(openai: FakeLLM, azure: FakeLLM) -> dict[str, Any]:
    """Settings for two fake providers with timeouts and retries compressed for tests."""
    return {
        "openai_base_url": openai.base_url,
        "azure_openai_endpoint": azure.endpoint,
        "azure_openai_api_key": API_KEY,
        "azure_openai_deployment": "gpt-4o",
        "openai_timeout": 0.5,
        "azure_timeout": 0.5,
        "llm_retry_delays": (0.01, 0.02, 0.05),
        "retry_base_seconds": 0.5,
        "retry_max_seconds": 2,
    }


async def dead_letter(settings: Settings, forced: int, malformed: int) -> list[str]:
    """Fill the DLQ: forced-to-Azure intents (Azure not configured) and malformed bodies."""
    envs = [
        envelope(
            {
                "type": "message_generation",
                "userId": f"u{i}",
                "forceProvider": "azure",
                "contentType": "dm",
                "data": {"context": f"hello {i}"},
            }
        )
        for i in range(forced)
    ]
    await send_bodies(settings, [*envs, *[f"not json {i}" for i in range(malformed)]])
    stats = await drain(settings)
    assert stats.outcomes == {
        k: v for k, v in {"dead_lettered": forced, "malformed": malformed}.items() if v
    }
    return [str(e.workflow_id) for e in envs]
