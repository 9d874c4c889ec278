"""The producer API for Python services: submit intents, learn how they ended.

    async with Producer(load_settings()) as producer:
        workflow_id = await producer.submit(
            {"type": "message_generation", "userId": "u-42", "data": {"context": "hi"}},
            idempotency_key="order-1234",
        )
        outcome = await producer.result(workflow_id, timeout=60)

Every intent is admitted by the worker's own check (``worker.contract.admit``,
with this configuration's providers) before anything is sent; a refused one
raises ``EnqueueRefused`` with the worker's reason (``submit``) or is reported
in its entry (``submit_many``). The same workflow id, or the same
``idempotency_key``, submitted twice runs once: the worker's claim sees the
second copy as a duplicate. ``SyncProducer`` wraps it for code without a loop.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from worker.config import Settings
from worker.contract import Envelope
from worker.errors import DeadlineExceeded, EnqueueRefused, WorkerError
from worker.ops.enqueue import configured_providers, envelope_from_json
from worker.queue import QueueClient
from worker.store import Store

__all__ = ["Producer", "Submitted", "SyncProducer", "WorkflowOutcome", "workflow_id_for"]

IDEMPOTENCY_NAMESPACE = uuid.UUID("6f1d2b0e-8e0a-4b7e-9b53-5c7a0c1f2e61")
Progress = Callable[[int, int], None]


def workflow_id_for(idempotency_key: str) -> uuid.UUID:
    """The workflow id of a producer's idempotency key (stable across processes)."""
    return uuid.uuid5(IDEMPOTENCY_NAMESPACE, idempotency_key)


@dataclass(frozen=True, slots=True)
class Submitted:
    """One entry of ``submit_many``: its workflow id and message id, or why not sent."""

    index: int
    workflow_id: str | None
    message_id: str | None = None
    error: str | None = None
    code: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class WorkflowOutcome:
    """How a workflow ended: its stored result, or why it was dead-lettered."""

    workflow_id: str
    status: Literal["completed", "failed"]
    result: dict[str, Any] | None
    error_code: str | None = None
    error_message: str | None = None


class Producer:
    """Async producer: ``async with Producer(settings) as producer``."""

    def __init__(self, settings: Settings, *, poll_seconds: float = 0.5) -> None:
        self._settings = settings
        self._providers = configured_providers(settings)
        self._poll = poll_seconds
        self._queue: QueueClient | None = None
        self._store: Store | None = None

    async def open(self) -> None:
        queue = QueueClient.from_settings(self._settings, pool=10)
        await queue.open()
        self._queue = queue

    async def close(self) -> None:
        if self._queue is not None:
            await self._queue.close()
            self._queue = None
        if self._store is not None:
            await self._store.close()
            self._store = None

    async def __aenter__(self) -> Producer:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def envelope(
        self,
        intent: dict[str, Any] | Envelope,
        *,
        workflow_id: str | uuid.UUID | None = None,
        idempotency_key: str | None = None,
    ) -> Envelope:
        """The envelope to send, admitted by the worker's check (``EnqueueRefused``)."""
        decoded = (
            intent.model_dump(mode="json", by_alias=True, exclude_none=True)
            if isinstance(intent, Envelope)
            else dict(intent)
        )
        if idempotency_key is not None:
            workflow_id = workflow_id_for(idempotency_key)
        if workflow_id is not None:
            inner = decoded.get("intent", decoded) if "intent" in decoded else decoded
            decoded = {"version": 1, "workflowId": str(workflow_id), "intent": inner}
        return envelope_from_json(decoded, self._providers)

    async def submit(
        self,
        intent: dict[str, Any] | Envelope,
        *,
        workflow_id: str | uuid.UUID | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Admit and send one intent; its workflow id."""
        envelope = self.envelope(intent, workflow_id=workflow_id, idempotency_key=idempotency_key)
        await self._open_queue().send_envelope(envelope)
        return str(envelope.workflow_id)

    async def submit_many(
        self,
        intents: Iterable[dict[str, Any] | Envelope],
        *,
        on_progress: Progress | None = None,
        parallel: int = 4,
    ) -> list[Submitted]:
        """Admit every intent, send the admitted ones in batches of 10 (SendMessageBatch),
        and report each entry; ``on_progress(done, total)`` after every batch. On a FIFO
        queue the batches go one after another, so each group keeps the input's order
        (each intent's group per ``FLEET_MESSAGE_GROUP``, its deduplication id its
        workflow id: a resubmission within five minutes is dropped by SQS)."""
        entries: list[Submitted] = []
        admitted: list[tuple[int, Envelope]] = []
        for index, intent in enumerate(intents):
            try:
                envelope = self.envelope(intent)
            except EnqueueRefused as exc:
                entries.append(Submitted(index, None, error=str(exc), code=exc.code))
                continue
            admitted.append((index, envelope))
            entries.append(Submitted(index, str(envelope.workflow_id)))
        total, done = len(entries), len(entries) - len(admitted)
        queue = self._open_queue()
        gate = asyncio.Semaphore(1 if queue.fifo else parallel)

        async def batch(members: list[tuple[int, Envelope]]) -> None:
            nonlocal done
            async with gate:
                sent = await queue.send_envelopes_each([e for _, e in members])
            for (index, envelope), outcome in zip(members, sent, strict=True):
                entries[index] = _entry(index, envelope, outcome)
            done += len(members)
            if on_progress is not None:
                on_progress(done, total)

        async with asyncio.TaskGroup() as group:
            for start in range(0, len(admitted), 10):
                group.create_task(batch(admitted[start : start + 10]))
        return entries

    async def result(
        self,
        workflow_id: str | uuid.UUID,
        timeout: float = 60.0,  # noqa: ASYNC109 - how long to wait for the stored result
    ) -> WorkflowOutcome:
        """The workflow's stored result, or its dead-letter reason, once it has ended;
        ``DeadlineExceeded`` (code ``result_timeout``) if it has not within ``timeout``."""
        store = await self._open_store()
        deadline = time.monotonic() + timeout
        while True:
            row = await store.workflow(str(workflow_id))
            if row is not None and row["status"] in ("completed", "failed"):
                return WorkflowOutcome(
                    str(workflow_id),
                    row["status"],
                    row["result"],
                    row["error_code"],
                    row["error_message"],
                )
            if time.monotonic() >= deadline:
                raise DeadlineExceeded(
                    f"workflow {workflow_id} has not ended after {timeout:g}s",
                    code="result_timeout",
                )
            await asyncio.sleep(min(self._poll, max(0.0, deadline - time.monotonic())))

    def _open_queue(self) -> QueueClient:
        if self._queue is None:
            raise RuntimeError("Producer is not open: use `async with Producer(...)`")
        return self._queue

    async def _open_store(self) -> Store:
        if self._store is None:
            store = Store(self._settings.require_database_url(), min_size=0, max_size=2)
            await store.open()
            self._store = store
        return self._store


def _entry(index: int, envelope: Envelope, outcome: str | WorkerError) -> Submitted:
    workflow_id = str(envelope.workflow_id)
    if isinstance(outcome, WorkerError):
        return Submitted(index, workflow_id, error=str(outcome), code=outcome.code)
    return Submitted(index, workflow_id, message_id=outcome)


class SyncProducer:
    """``Producer`` for code without an event loop: ``with SyncProducer(settings) as p``."""

    def __init__(self, settings: Settings, *, poll_seconds: float = 0.5) -> None:
        self._producer = Producer(settings, poll_seconds=poll_seconds)
        self._runner: asyncio.Runner | None = None

    def __enter__(self) -> SyncProducer:
        self._runner = asyncio.Runner()
        self._runner.run(self._producer.open())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            self._runner.run(self._producer.close())
            self._runner.close()
            self._runner = None

    def _opened(self) -> asyncio.Runner:
        if self._runner is None:
            raise RuntimeError("SyncProducer is not open: use `with SyncProducer(...)`")
        return self._runner

    def submit(self, intent: dict[str, Any] | Envelope, **kwargs: Any) -> str:
        runner = self._opened()
        return runner.run(self._producer.submit(intent, **kwargs))

    def submit_many(
        self, intents: Iterable[dict[str, Any] | Envelope], **kwargs: Any
    ) -> list[Submitted]:
        runner = self._opened()
        return runner.run(self._producer.submit_many(intents, **kwargs))

    def result(self, workflow_id: str | uuid.UUID, timeout: float = 60.0) -> WorkflowOutcome:
        runner = self._opened()
        return runner.run(self._producer.result(workflow_id, timeout))
