"""Shared fixtures: one LocalStack, one PostgreSQL database and one fake OpenAI per session.

PostgreSQL comes from TEST_DATABASE_URL when set (CI points it at the machine's
server), else an embedded server; either way the suite works in a scratch
database it drops at the end. Each test gets queues of its own.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from worker.config import Settings, load_settings
from worker.consumer import FleetStats, run_worker
from worker.contract import Envelope, Intent, encode_envelope, message_attributes
from worker.local import EmbeddedPostgres, FakeGateway, FakeLLM, LocalStack, scratch_database
from worker.queue import QueueClient, QueueSpec, create_queues
from worker.store import Store, migrate

API_KEY = "sk-test-fleet-secret-key-1234567890"


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


Factory = Callable[..., Awaitable[Settings]]


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


def queue_for(settings: Settings) -> QueueClient:
    return QueueClient.from_settings(settings)


def envelope(intent: dict[str, Any], workflow_id: uuid.UUID | None = None) -> Envelope:
    return Envelope.wrap(Intent.model_validate(intent), workflow_id)


async def send_bodies(settings: Settings, bodies: list[str | Envelope]) -> None:
    async with queue_for(settings) as queue:
        for body in bodies:
            if isinstance(body, Envelope):
                await queue.send(
                    encode_envelope(body, settings.max_message_bytes),
                    message_attributes(body),
                    lane=queue.lane_for(body.intent.priority),
                )
            else:
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


class LoggedProcess:
    """A `fleet` subprocess whose stderr goes to a file (a pipe nobody reads would fill
    up and block the worker mid-log)."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Any) -> None:
        self.proc = proc
        self._log = log

    @classmethod
    async def start(cls, args: list[str], env: dict[str, str]) -> LoggedProcess:
        import sys
        import tempfile

        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by finish()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker.cli",
            *args,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        return cls(proc, log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def send_signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    async def finish(self, signum: int | None = None, within: float = 60) -> tuple[int, str]:
        """Signal it (if still running), wait, and return (exit code, stderr)."""
        if signum is not None and self.proc.returncode is None:
            self.proc.send_signal(signum)
        try:
            await asyncio.wait_for(self.proc.wait(), within)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        self._log.seek(0)
        text = self._log.read().decode(errors="replace")
        self._log.close()
        return int(self.proc.returncode or 0), text


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
