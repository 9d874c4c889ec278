"""Shared fixtures: one LocalStack, one PostgreSQL database and one fake OpenAI per session.

PostgreSQL comes from TEST_DATABASE_URL when set (CI points it at the machine's
server), else an embedded server; either way the suite works in a scratch
database it drops at the end. Each test gets queues of its own.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from devstack import EmbeddedPostgres, FakeGateway, FakeLLM, LocalStack, scratch_database
from tests.support import API_KEY, Factory
from worker.config import Settings, load_settings
from worker.queue import QueueSpec, create_queues
from worker.store import Store, migrate


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    given = os.environ.get("AWS_ENDPOINT_URL_SQS")
    if given:
        yield given
        return
    with LocalStack() as stack:
        yield stack.endpoint


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield given
        return
    with EmbeddedPostgres() as server:
        yield server.url


@pytest.fixture(scope="session")
def database_url(pg_server: str) -> Iterator[str]:
    with scratch_database(pg_server, prefix="fleet_test") as url:
        yield url


@pytest.fixture(scope="session")
async def migrated(database_url: str) -> str:
    await migrate(database_url)
    return database_url


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLM]:
    with FakeLLM(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture(scope="session")
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway(token=API_KEY) as fake:
        yield fake


@pytest.fixture(scope="session")
def azure_fake() -> Iterator[FakeLLM]:
    with FakeLLM(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
async def store(migrated: str) -> AsyncIterator[Store]:
    async with Store(migrated) as opened:
        yield opened




@pytest.fixture
def make_settings(
    sqs_endpoint: str, migrated: str, fake_llm: FakeLLM, gateway: FakeGateway
) -> Factory:
    """Settings with time compressed and fresh queues (created) for this test."""

    async def build(*, create: bool = True, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "sqs_endpoint_url": sqs_endpoint,
            "database_url": migrated,
            "openai_base_url": fake_llm.base_url,
            "openai_api_key": API_KEY,
            "queue_name": f"t-{uuid.uuid4().hex[:12]}",
            "concurrency": 16,
            "pollers": 2,
            "wait_seconds": 1,
            "visibility_timeout": 5,
            "heartbeat_interval": 1,
            "retry_base_seconds": 1,
            "retry_max_seconds": 2,
            "max_receives": 3,
            "llm_retry_delays": (),
            "shutdown_grace": 5,
            "log_level": "WARNING",
            "cache_ttl": 0,
            "send_gateway_url": gateway.endpoint,
            "send_gateway_token": API_KEY,
            "send_spacing": 2,
            "health_port": 0,
            "cloudwatch_enabled": False,
        }
        values.update(overrides)
        settings = load_settings(**values)
        if create:
            await create_queues(
                QueueSpec.from_settings(settings),
                endpoint=settings.sqs_endpoint_url,
                region=settings.aws_region,
            )
        return settings

    return build


