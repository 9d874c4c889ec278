"""Assemble a worker process from settings and run it until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

import structlog
from pydantic import SecretStr

from worker.config import ProviderSettings, SendSettings, Settings
from worker.consumer.decide import Decider
from worker.consumer.fleet import Fleet, FleetStats
from worker.consumer.heartbeat import Heartbeat
from worker.consumer.policy import worker_id
from worker.consumer.processor import Processor
from worker.consumer.settle import Settler
from worker.consumer.spending import build_ledger
from worker.contract import Envelope
from worker.errors import ConfigError, WorkerError
from worker.limits import build_provider_limits
from worker.observability import CloudWatchPublisher, HealthServer, Metrics
from worker.observability.logging import add_secrets
from worker.providers import (
    LLM,
    AzureOpenAIClient,
    BreakerPolicy,
    ChatClient,
    CircuitBreaker,
    HttpChatClient,
    OpenAIClient,
    PriceTable,
    ResponseCache,
    Route,
    SpendGate,
)
from worker.queue import QueueClient, signing_key
from worker.sends import GatewayClient, Sends
from worker.store import CostBuffer, SendLedger, Store, migrate

__all__ = ["build_llm", "run_worker"]

log = structlog.get_logger("worker.runtime")


def build_llm(
    settings: ProviderSettings,
    store: Store | None = None,
    metrics: Metrics | None = None,
    spend: SpendGate | None = None,
    *,
    connections: int = 512,
) -> LLM:
    """The provider routes that are configured, with breakers, prices and the cache;
    ``connections`` per provider: the most handlers that can call it at once (every
    pool follows the concurrency it serves: a fixed 512 was the plateau of issue 18)."""
    policy = _breaker_policy(settings)
    routes: dict[str, Route] = {}
    if settings.openai_api_key is not None:
        client: ChatClient = OpenAIClient(
            settings.openai_base_url,
            settings.openai_api_key.get_secret_value(),
            timeout=settings.openai_timeout,
            connections=connections,
        )
        routes["openai"] = Route(client, settings.model, CircuitBreaker("openai", policy))
    azure_secret = settings.azure_openai_api_key or settings.azure_openai_ad_token
    if settings.azure_openai_endpoint and azure_secret:
        if not settings.azure_openai_deployment:
            raise ConfigError(
                "AZURE_OPENAI_DEPLOYMENT is not set (needed with AZURE_OPENAI_ENDPOINT)"
            )
        client = AzureOpenAIClient(
            settings.azure_openai_endpoint,
            settings.azure_openai_deployment,
            api_key=_secret(settings.azure_openai_api_key),
            ad_token=_secret(settings.azure_openai_ad_token),
            api_version=settings.openai_api_version,
            timeout=settings.azure_timeout,
            connections=connections,
        )
        routes["azure"] = Route(client, settings.azure_model, CircuitBreaker("azure", policy))
    try:
        prices = PriceTable(settings.prices)
    except ValueError as exc:
        raise ConfigError(f"FLEET_PRICES: {exc}") from exc
    cache = ResponseCache(store, settings.cache_ttl) if store and settings.cache_ttl > 0 else None
    limits = build_provider_limits(settings, store) if store is not None else None
    for name, route in routes.items():  # rate limits (worker.limits) hear the headers
        if limits and limits.limited(name) and isinstance(route.client, HttpChatClient):
            route.client.observe = limits.observe
    return LLM(
        routes,
        routing=settings.routes,
        retry_delays=settings.llm_retry_delays,
        prices=prices,
        cache=cache,
        cache_intents=frozenset(settings.cache_intents),
        metrics=metrics,
        spend=spend,
        pace=limits.pace if limits is not None else None,
    )


def _breaker_policy(settings: ProviderSettings) -> BreakerPolicy:
    return BreakerPolicy(
        consecutive_failures=settings.breaker_failures,
        failure_rate=settings.breaker_failure_rate,
        min_calls=settings.breaker_min_calls,
        window_seconds=settings.breaker_window,
        cooldown_seconds=settings.breaker_cooldown,
    )


async def _open_llm(
    stack: AsyncExitStack, settings: Settings, store: Store, metrics: Metrics
) -> LLM:
    """The providers, behind the budget ledger (worker.spend), closed with the stack."""
    ledger = await build_ledger(settings.spend, store, metrics)
    _background(stack, ledger.run(), ledger.close)
    llm = build_llm(settings.providers, store, metrics, ledger, connections=settings.concurrency)
    stack.push_async_callback(llm.close)
    return llm


def build_sends(settings: SendSettings, store: Store, queue: QueueClient) -> Sends:
    """The send service; without FLEET_SEND_GATEWAY_URL, sends fail permanently with why."""
    gateway = None
    if settings.send_gateway_url:
        gateway = GatewayClient(
            settings.send_gateway_url,
            _secret(settings.send_gateway_token),
            timeout=settings.send_timeout,
        )
    else:
        log.warning("send_gateway_not_configured", setting="FLEET_SEND_GATEWAY_URL")

    async def enqueue(envelope: Envelope, delay: int) -> None:
        await queue.send_envelope(envelope, delay)

    return Sends(
        SendLedger(store),
        gateway,
        enqueue,
        spacing=settings.send_spacing,
        key_mode=settings.send_key,
        retry_delays=settings.llm_retry_delays,
    )


def sqs_pool(settings: Settings) -> int:
    """SQS connections: each poller's long poll and the batched deletes, visibility
    changes and sends of the handlers, which grow with the slots (one call per ten)."""
    return settings.consumer.poller_count * 2 + max(40, settings.concurrency // 16)


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def register_secrets(settings: Settings) -> None:
    add_secrets(
        secret.get_secret_value() if secret else None
        for secret in (
            settings.openai_api_key,
            settings.azure_openai_api_key,
            settings.azure_openai_ad_token,
            settings.send_gateway_token,
            settings.database_url,
            settings.alert_webhook_url,
        )
    )


async def run_worker(
    settings: Settings,
    *,
    until_idle: bool = False,
    handle_signals: bool = True,
    stop: asyncio.Event | None = None,
) -> FleetStats:
    """Open the store, the queue, the providers and the sidecars; consume; close in order."""
    register_secrets(settings)
    database_url = settings.require_database_url()
    if settings.migrate_on_start:
        await migrate(database_url)
    owner = worker_id()
    metrics = Metrics(aggregate=settings.cloudwatch_enabled)
    async with AsyncExitStack() as stack:
        store = Store(database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
        await stack.enter_async_context(store)
        llm = await _open_llm(stack, settings, store, metrics)
        costs = CostBuffer(store)
        queue = QueueClient.from_settings(settings, pool=sqs_pool(settings))
        await stack.enter_async_context(queue)
        heartbeat = Heartbeat(
            queue,
            store,
            owner=owner,
            interval=settings.heartbeat_interval,
            visibility_timeout=settings.visibility_timeout,
            lease_seconds=settings.lease,
            metrics=metrics,
        )
        sends = build_sends(settings.sends, store, queue)
        if sends.gateway is not None:
            stack.push_async_callback(sends.gateway.close)
        processor = Processor(
            Decider(
                settings.consumer,
                queue,
                store,
                llm,
                owner,
                sends,
                signing_key=signing_key(settings),
                spend=settings.spend,
            ),
            Settler(settings.consumer, queue, store, owner, costs),
            heartbeat,
            metrics,
        )
        fleet = Fleet(settings.consumer, queue, processor, heartbeat, metrics)
        _background(stack, costs.run(), _final_flush_of(costs))
        await _start_sidecars(stack, settings, fleet, queue, store, metrics, owner)
        if handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, fleet.stop)
                stack.callback(loop.remove_signal_handler, sig)
        if stop is not None:
            _background(stack, _stop_when(stop, fleet))
        log.info("worker_started", worker=owner, queue=settings.queue_name)
        return await fleet.run(until_idle=until_idle)


def _background(
    stack: AsyncExitStack,
    work: Coroutine[Any, Any, None],
    then: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """A tracked helper task, cancelled (then ``then`` awaited) when the worker closes."""
    task = asyncio.create_task(work)

    async def finish() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if then is not None:
            await then()

    stack.push_async_callback(finish)


async def _start_sidecars(
    stack: AsyncExitStack,
    settings: Settings,
    fleet: Fleet,
    queue: QueueClient,
    store: Store,
    metrics: Metrics,
    owner: str,
) -> None:
    """Health endpoint, the live-worker registry and the CloudWatch publisher."""
    if settings.health_port:

        async def ready() -> tuple[bool, str]:
            if fleet.stopping:
                return False, "shutting down"
            try:
                async with asyncio.timeout(3):
                    await store.ping()
                    await queue.depth()
            except (WorkerError, TimeoutError) as exc:
                return False, f"not ready: {exc or type(exc).__name__}"
            return True, "sqs and postgres reachable"

        health = HealthServer(
            settings.health_port,
            live=fleet.live,
            ready=ready,
            metrics=metrics,
            host=settings.health_host,
        )
        await health.start()
        stack.push_async_callback(health.stop)
        log.info("health_endpoint_started", port=health.port)
    host, pid = socket.gethostname(), os.getpid()

    async def registry() -> None:
        while True:
            try:
                await store.worker_seen(owner, host, pid, fleet.in_flight)
            except WorkerError as exc:
                log.warning("worker_registry_failed", error=str(exc))
            await asyncio.sleep(settings.worker_heartbeat_seconds)

    async def unregister() -> None:
        with contextlib.suppress(WorkerError):
            await store.worker_gone(owner)

    _background(stack, registry(), unregister)
    if settings.cloudwatch_enabled:
        await _start_publisher(stack, settings, queue, store, metrics)


async def _start_publisher(
    stack: AsyncExitStack, settings: Settings, queue: QueueClient, store: Store, metrics: Metrics
) -> None:
    """CloudWatch: the metrics, plus backlog per worker and the oldest message's age."""

    async def sample() -> None:
        depth = await queue.depth()
        workers = max(1, await store.live_workers())
        metrics.gauge("BacklogPerWorker", depth.visible / workers)
        metrics.sample_message_age()

    publisher = CloudWatchPublisher(
        metrics,
        namespace=settings.metrics_namespace,
        endpoint=settings.cloudwatch_endpoint_url,
        region=settings.aws_region,
        interval=settings.metrics_interval,
        sample=sample,
    )
    await publisher.open()
    _background(stack, publisher.run(), publisher.close)


def _final_flush_of(costs: CostBuffer) -> Callable[[], Awaitable[None]]:
    async def flush() -> None:
        """Shutdown: the buffered cost rows get one last chance before the pool closes."""
        if not await costs.flush():
            log.error("cost_rows_unwritten_at_exit", rows=costs.pending)

    return flush


async def _stop_when(event: asyncio.Event, fleet: Fleet) -> None:
    await event.wait()
    fleet.stop()
