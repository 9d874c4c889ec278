"""``Store``: the fleet's one handle on PostgreSQL, composed of its parts.

    Store
    ├── pool        Pool: connections, error translation   (pool.py)
    ├── workflows   Workflows: claim, complete, fail, dead letters, group commit
    ├── cache       CacheTable: LLM responses by request key
    └── workers     WorkerRegistry: who is running

The methods below delegate to those parts under the names the consumer, the
providers and the send step have always called; new code may use the parts
directly. Operator questions are in ``worker.store.reads``, which takes a
``Store`` (or a ``Pool``) wherever it wants connections.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from worker.store.cache import CacheTable
from worker.store.pool import Conn, Pool, Row
from worker.store.records import CallRecord, Claim, DeadLetter, WorkflowRef
from worker.store.registry import WorkerRegistry
from worker.store.workflows import Workflows

__all__ = ["Store"]


class Store:
    """PostgreSQL access for the fleet. ``async with Store(url) as store``."""

    def __init__(self, database_url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.pool = Pool(database_url, min_size=min_size, max_size=max_size)
        self.workflows = Workflows(self.pool)
        self.cache = CacheTable(self.pool)
        self.workers = WorkerRegistry(self.pool)

    async def open(self, wait_seconds: float = 10.0) -> None:
        await self.pool.open(wait_seconds)

    async def close(self) -> None:
        await self.workflows.drain()
        await self.pool.close()

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A pooled connection (autocommit, dict rows); database errors leave as ours."""
        async with self.pool.connection() as conn:
            yield conn

    async def ping(self) -> None:
        await self.pool.ping()

    # --- workflows ---------------------------------------------------------
    async def claim(self, ref: WorkflowRef, owner: str, lease_seconds: float) -> Claim:
        return await self.workflows.claim(ref, owner, lease_seconds)

    async def extend_leases(self, ids: Sequence[str], owner: str, lease_seconds: float) -> None:
        await self.workflows.extend_leases(ids, owner, lease_seconds)

    async def complete(
        self,
        ref: WorkflowRef,
        owner: str,
        result: dict[str, Any],
        provider: str | None,
        calls: Sequence[CallRecord],
        receive_count: int,
    ) -> tuple[bool, bool]:
        """(completed now, cost rows written); see ``Workflows.complete``."""
        return await self.workflows.complete(ref, result, provider, calls, receive_count)

    async def record_failure(
        self,
        ref: WorkflowRef,
        owner: str,
        *,
        status: str,
        error_code: str,
        error_message: str,
        calls: Sequence[CallRecord],
        receive_count: int,
        dead_letter: DeadLetter | None = None,
    ) -> bool:
        return await self.workflows.record_failure(
            ref,
            owner,
            status=status,
            error_code=error_code,
            error_message=error_message,
            calls=calls,
            receive_count=receive_count,
            dead_letter=dead_letter,
        )

    async def release(self, ref: WorkflowRef, owner: str, status: str = "retrying") -> None:
        await self.workflows.release(ref, owner, status)

    async def add_dead_letter(self, dead_letter: DeadLetter) -> None:
        await self.workflows.add_dead_letter(dead_letter)

    async def insert_calls(
        self, ref: WorkflowRef, calls: Sequence[CallRecord], receive_count: int
    ) -> None:
        await self.workflows.insert_calls(ref, calls, receive_count)

    async def workflow(self, workflow_id: str) -> Row | None:
        return await self.workflows.get(workflow_id)

    # --- cache ---------------------------------------------------------------
    async def cached_response(self, key: str) -> dict[str, Any] | None:
        return await self.cache.get(key)

    async def cache_response(
        self, key: str, provider: str, response: dict[str, Any], ttl_seconds: float
    ) -> None:
        await self.cache.put(key, provider, response, ttl_seconds)

    # --- worker registry -------------------------------------------------------
    async def worker_seen(self, worker_id: str, host: str, pid: int, in_flight: int) -> None:
        await self.workers.seen(worker_id, host, pid, in_flight)

    async def worker_gone(self, worker_id: str) -> None:
        await self.workers.gone(worker_id)

    async def live_workers(self, within_seconds: float = 60.0) -> int:
        return await self.workers.live(within_seconds)
