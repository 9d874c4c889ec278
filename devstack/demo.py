"""`fleet demo`: the whole fleet on the local stack, start to drained queue.

Starts LocalStack (unless AWS_ENDPOINT_URL_SQS names an SQS), PostgreSQL (a
scratch database on DATABASE_URL / TEST_DATABASE_URL, else an embedded server)
and the fake OpenAI; creates the queues, migrates, enqueues a sample mix,
runs one worker until the queue is drained, summarises from Postgres and
stops everything it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from devstack.fake_gateway import FakeGateway
from devstack.fake_llm import FakeLLM
from devstack.localstack import LocalStack
from devstack.postgres import EmbeddedPostgres, scratch_database
from worker.config import Settings, load_settings
from worker.consumer import run_worker
from worker.contract import INTERNAL_TYPES, Envelope, Intent
from worker.ops.shape import usd
from worker.queue import QueueClient, QueueSpec, create_queues
from worker.store import Store, migrate
from worker.store.reads import cost_since, dead_letters_since, run_outcome

__all__ = ["StackUrls", "demo_messages", "local_stack", "run_demo", "summarize"]

DEMO_KEY = "sk-local-demo-key-not-secret-0000"


@dataclass(frozen=True, slots=True)
class StackUrls:
    sqs_endpoint: str
    database_url: str
    openai_base_url: str
    azure_endpoint: str
    gateway_url: str
    fake: FakeLLM
    azure_fake: FakeLLM
    gateway: FakeGateway


@contextlib.contextmanager
def local_stack(*, latency_ms: float = 0.0) -> Iterator[StackUrls]:
    """Everything the fleet needs, on this machine; stopped on exit."""
    with contextlib.ExitStack() as stack:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_SQS") or os.environ.get("AWS_ENDPOINT_URL")
        if not endpoint:
            endpoint = stack.enter_context(LocalStack()).endpoint
        server = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
        if not server:
            server = stack.enter_context(EmbeddedPostgres()).url
        database_url = stack.enter_context(scratch_database(server, prefix="fleet_demo"))
        fake = stack.enter_context(FakeLLM(latency_ms=latency_ms, api_key=DEMO_KEY))
        azure = stack.enter_context(FakeLLM(latency_ms=latency_ms, api_key=DEMO_KEY))
        gateway = stack.enter_context(FakeGateway(token=DEMO_KEY))
        yield StackUrls(
            endpoint,
            database_url,
            fake.base_url,
            azure.endpoint,
            gateway.endpoint,
            fake,
            azure,
            gateway,
        )


def demo_settings(urls: StackUrls, **overrides: Any) -> Settings:
    """Production shapes with time compressed so the demo takes seconds."""
    values: dict[str, Any] = {
        "sqs_endpoint_url": urls.sqs_endpoint,
        "database_url": urls.database_url,
        "openai_base_url": urls.openai_base_url,
        "openai_api_key": DEMO_KEY,
        "azure_openai_endpoint": urls.azure_endpoint,
        "azure_openai_api_key": DEMO_KEY,
        "azure_openai_deployment": "gpt-4o",
        "send_gateway_url": urls.gateway_url,
        "send_gateway_token": DEMO_KEY,
        "send_spacing": 2,
        "health_port": 0,
        "cloudwatch_endpoint_url": urls.sqs_endpoint,
        "metrics_interval": 5,
        "queue_name": f"fleet-demo-{uuid.uuid4().hex[:8]}",
        "concurrency": 32,
        "pollers": 2,
        "wait_seconds": 1,
        "visibility_timeout": 10,
        "heartbeat_interval": 3,
        "retry_base_seconds": 1,
        "retry_max_seconds": 4,
        "max_receives": 3,
        "llm_retry_delays": (0.05,),
        "shutdown_grace": 5,
    }
    values.update(overrides)
    return load_settings(**values)


def demo_messages(run: str) -> list[tuple[str, Envelope | str]]:
    """(label, envelope or raw body): the four intents, malformed bodies, a permanent and a
    transient fault."""

    def env(label: str, intent: dict[str, Any]) -> tuple[str, Envelope | str]:
        return label, Envelope.wrap(Intent.model_validate(intent))

    return [
        env(
            "plan a week",
            {
                "type": "content_planning",
                "userId": "creator-1",
                "platforms": ["onlyfans", "instagram"],
                "data": {"goal": "grow subscribers before a launch", "days": 7},
            },
        ),
        env(
            "fan message, sent",
            {
                "type": "message_generation",
                "userId": "creator-1",
                "recipientId": "fan-7",
                "sendToOnlyFans": True,
                "priority": "high",
                "data": {"context": "fan renewed for 3 months", "fanName": "Sam"},
            },
        ),
        env(
            "second message to the same fan (spaced)",
            {
                "type": "message_generation",
                "userId": "creator-1",
                "recipientId": "fan-7",
                "sendToOnlyFans": True,
                "data": {"context": "new set tonight", "fanName": "Sam"},
            },
        ),
        env(
            "validate a caption",
            {
                "type": "content_validation",
                "userId": "creator-2",
                "data": {"content": "New set drops Friday!", "rules": ["no explicit words"]},
            },
        ),
        env(
            "campaign x5",
            {
                "type": "campaign_execution",
                "userId": "creator-2",
                "data": {"brief": "weekend discount", "recipients": [f"fan-{i}" for i in range(5)]},
            },
        ),
        (
            "bare intent",
            json.dumps(
                {
                    "type": "message_generation",
                    "userId": "creator-3",
                    "data": {"context": "welcome a new fan"},
                }
            ),
        ),
        ("not JSON", "{this is not json"),
        ("unknown intent", json.dumps({"type": "teleport", "userId": "creator-3"})),
        env(
            "rejected by provider",
            {
                "type": "message_generation",
                "userId": "creator-3",
                "data": {"context": "[[fake:reject]]"},
            },
        ),
        env(
            "transient then ok",
            {
                "type": "content_validation",
                "userId": "creator-1",
                "data": {"content": f"[[fake:transient:{run}:2]] teaser"},
            },
        ),
    ]


async def _enqueue(settings: Settings, messages: list[tuple[str, Envelope | str]]) -> None:
    async with QueueClient.from_settings(settings) as q:
        for _, body in messages:
            if isinstance(body, Envelope):
                await q.send_envelope(body)
            else:  # a raw body (malformed on purpose, or a bare intent): as it is
                await q.send(body, {})


async def summarize(
    store: Store, since: datetime, queue: QueueClient | None = None
) -> dict[str, Any]:
    """The demo's outcome, from Postgres (and the DLQ depth when a queue is given)."""
    outcome = await run_outcome(store, since, leave_out=INTERNAL_TYPES)
    counts = outcome.statuses
    letters = await dead_letters_since(store, since)
    costs = await cost_since(store, since)
    by_provider: dict[str, Decimal] = {}
    by_intent: dict[str, Decimal] = {}
    for row in costs:
        cost = Decimal(row["cost_usd"] or 0)
        by_provider[row["provider"]] = by_provider.get(row["provider"], Decimal(0)) + cost
        by_intent[row["intent_type"]] = by_intent.get(row["intent_type"], Decimal(0)) + cost
    summary: dict[str, Any] = {
        "completed": counts.get("completed", 0),
        "deadLettered": len(letters),
        "retried": outcome.retried,
        "failedWorkflows": counts.get("failed", 0),
        "inProgress": counts.get("running", 0) + counts.get("retrying", 0),
        "llmCalls": sum(int(r["calls"]) for r in costs),
        "sends": outcome.sends,
        "costUsd": usd(sum(by_provider.values(), Decimal(0))),
        "costByProvider": {name: usd(value) for name, value in by_provider.items()},
        "costByIntent": {name: usd(value) for name, value in by_intent.items()},
        "deadLetters": [
            {
                "messageId": r["message_id"],
                "intentType": r["intent_type"],
                "errorClass": r["error_class"],
                "errorCode": r["error_code"],
                "reason": r["error_message"],
            }
            for r in letters
        ],
    }
    if queue is not None:
        summary["dlqDepth"] = (await queue.depth(dlq=True)).visible
    return summary


async def run_demo(
    settings: Settings, on_step: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    """Create queues, migrate, enqueue the mix, drain it, and return the summary."""
    started = time.monotonic()
    since = datetime.now(UTC)
    on_step(f"creating queues {settings.queue_name} (+ DLQ)")
    await create_queues(
        QueueSpec.from_settings(settings),
        endpoint=settings.sqs_endpoint_url,
        region=settings.aws_region,
    )
    on_step("migrating the database")
    database_url = settings.require_database_url()
    await migrate(database_url)
    messages = demo_messages(uuid.uuid4().hex[:8])
    on_step(f"enqueueing {len(messages)} messages")
    await _enqueue(settings, messages)
    on_step("running the fleet until the queue is drained")
    stats = await run_worker(settings, until_idle=True)
    async with (
        Store(database_url) as store,
        QueueClient.from_settings(settings) as queue,
    ):
        summary = await summarize(store, since, queue)
    summary["enqueued"] = len(messages)
    summary["received"] = stats.received
    summary["elapsedSeconds"] = round(time.monotonic() - started, 2)
    return summary
