"""Assemble a worker process from settings and run it until a signal."""

from __future__ import annotations

import asyncio
import signal
from contextlib import AsyncExitStack

import structlog

from worker.config import Settings
from worker.consumer.fleet import Fleet, FleetStats
from worker.consumer.heartbeat import Heartbeat
from worker.consumer.policy import worker_id
from worker.consumer.processor import Processor
from worker.errors import ConfigError
from worker.observability.logging import add_secrets
from worker.providers import LLM, OpenAIClient
from worker.queue import QueueClient
from worker.store import Store, migrate

__all__ = ["build_llm", "run_worker"]

log = structlog.get_logger("worker.runtime")


def build_llm(settings: Settings) -> LLM:
    if settings.openai_api_key is None:
        raise ConfigError("OPENAI_API_KEY is not set: the worker needs a provider key")
    client = OpenAIClient(
        settings.openai_base_url,
        settings.openai_api_key.get_secret_value(),
        timeout=settings.openai_timeout,
    )
    return LLM(client, model=settings.model, retry_delays=settings.llm_retry_delays)


def register_secrets(settings: Settings) -> None:
    add_secrets(
        secret.get_secret_value() if secret else None
        for secret in (
            settings.openai_api_key,
            settings.azure_openai_api_key,
            settings.database_url,
        )
    )


async def run_worker(
    settings: Settings, *, until_idle: bool = False, handle_signals: bool = True
) -> FleetStats:
    """Open the queue, the store and the provider; consume; close in order."""
    register_secrets(settings)
    database_url = settings.require_database_url()
    if settings.migrate_on_start:
        await migrate(database_url)
    owner = worker_id()
    async with AsyncExitStack() as stack:
        llm = build_llm(settings)
        stack.push_async_callback(llm.close)
        store = Store(database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
        await stack.enter_async_context(store)
        queue = QueueClient(
            settings.queue_name,
            settings.dead_letter_queue_name,
            endpoint=settings.sqs_endpoint_url,
            region=settings.aws_region,
            pool=settings.pollers + 40,
        )
        await stack.enter_async_context(queue)
        heartbeat = Heartbeat(
            queue,
            store,
            owner=owner,
            interval=settings.heartbeat_interval,
            visibility_timeout=settings.visibility_timeout,
            lease_seconds=settings.lease,
        )
        processor = Processor(settings, queue, store, llm, heartbeat, owner)
        fleet = Fleet(settings, queue, processor, heartbeat)
        if handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, fleet.stop)
                stack.callback(loop.remove_signal_handler, sig)
        log.info("worker_started", worker=owner, queue=settings.queue_name)
        return await fleet.run(until_idle=until_idle)
