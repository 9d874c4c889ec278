"""Response cache in PostgreSQL, and single-flight for identical requests.

The key is a hash of (provider, model, messages, parameters). A hit costs
nothing and is recorded as a cost row with ``cache_hit = true``. Identical
requests in flight in one process share one upstream call. Cache trouble is
logged and never fails a call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict

import structlog

from worker.errors import WorkerError
from worker.providers.base import ChatRequest, ChatResponse
from worker.store import Store

__all__ = ["ResponseCache", "cache_key"]

log = structlog.get_logger("worker.providers.cache")


def cache_key(provider: str, request: ChatRequest) -> str:
    material = json.dumps(
        [
            provider,
            request.model,
            request.messages,
            request.json_mode,
            request.temperature,
            request.max_tokens,
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode()).hexdigest()


class ResponseCache:
    def __init__(self, store: Store, ttl_seconds: float) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._flights: dict[str, asyncio.Future[ChatResponse]] = {}
        self.hits = 0
        self.shared = 0

    async def get(self, key: str) -> ChatResponse | None:
        try:
            found = await self._store.cached_response(key)
        except WorkerError as exc:
            log.warning("cache_read_failed", error=str(exc))
            return None
        if found is None:
            return None
        self.hits += 1
        return ChatResponse(**found)

    async def put(self, key: str, provider: str, response: ChatResponse) -> None:
        try:
            await self._store.cache_response(key, provider, asdict(response), self._ttl)
        except WorkerError as exc:
            log.warning("cache_write_failed", error=str(exc))

    async def single_flight(
        self, key: str, call: Callable[[], Awaitable[ChatResponse]]
    ) -> tuple[ChatResponse, bool]:
        """Run ``call`` once per key at a time; (response, shared) for the others."""
        flight = self._flights.get(key)
        if flight is not None:
            self.shared += 1
            return await asyncio.shield(flight), True
        flight = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            response = await call()
        except BaseException as exc:
            if not flight.done():
                flight.set_exception(
                    exc if isinstance(exc, Exception) else WorkerError("cancelled")
                )
                flight.exception()  # mark retrieved: waiters may be none
            raise
        else:
            flight.set_result(response)
            return response, False
        finally:
            self._flights.pop(key, None)
