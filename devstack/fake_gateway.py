"""A local HTTP fake of the OnlyFans send gateway.

``POST /messages`` with ``Idempotency-Key``: records every delivery (pair,
arrival time, key); a repeated key gets the first answer back with
``Idempotent-Replayed: true`` and no new delivery. Faults by config: a rate
of 429 / 500 / 503 / timeouts, and a fixed latency (to widen the window
between the gateway's delivery and the worker's bookkeeping).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

from devstack._server import ThreadedApp

__all__ = ["Delivery", "FakeGateway", "GatewayConfig"]


@dataclass(frozen=True, slots=True)
class Delivery:
    key: str
    creator_id: str
    fan_id: str
    text: str
    at: float  # time.time() at arrival
    message_id: str


@dataclass(slots=True)
class GatewayConfig:
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    faults: tuple[str, ...] = ("429", "500", "503", "timeout")
    timeout_sleep: float = 30.0
    seed: int | None = None


@dataclass(slots=True)
class _State:
    deliveries: list[Delivery] = field(default_factory=list)
    by_key: dict[str, Delivery] = field(default_factory=dict)
    replays: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    requests: int = 0


class FakeGateway(ThreadedApp):
    name = "fake-gateway"

    def __init__(self, *, token: str | None = None, config: GatewayConfig | None = None) -> None:
        super().__init__()
        self.token = token
        self.config = config or GatewayConfig()
        self._state = _State()
        self._lock = threading.Lock()
        self._rng = random.Random(self.config.seed)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/messages", self._messages)

    def __enter__(self) -> FakeGateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._state.deliveries)

    @property
    def replays(self) -> int:
        return self._state.replays

    @property
    def faults(self) -> Counter[str]:
        return self._state.faults

    def per_pair(self) -> dict[tuple[str, str], list[float]]:
        pairs: dict[tuple[str, str], list[float]] = {}
        for d in self.deliveries:
            pairs.setdefault((d.creator_id, d.fan_id), []).append(d.at)
        return {pair: sorted(times) for pair, times in pairs.items()}

    def duplicates(self) -> int:
        """Deliveries beyond the first per idempotency key (should be zero)."""
        counts = Counter(d.key for d in self.deliveries)
        return sum(n - 1 for n in counts.values())

    async def _messages(self, request: web.Request) -> web.Response:
        arrived = time.time()
        with self._lock:
            self._state.requests += 1
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        key = request.headers.get("Idempotency-Key", "")
        if not key:
            return web.json_response({"error": "Idempotency-Key header is required"}, status=400)
        try:
            body = await request.json()
            creator, fan, text = str(body["creatorId"]), str(body["fanId"]), str(body["text"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "body needs creatorId, fanId, text"}, status=422)
        with self._lock:
            known = self._state.by_key.get(key)
            if known is not None:
                self._state.replays += 1
                return web.json_response(
                    {"id": known.message_id, "status": "sent"},
                    headers={"Idempotent-Replayed": "true"},
                )
            fault = None
            if self.config.fault_rate and self._rng.random() < self.config.fault_rate:
                fault = self._rng.choice(self.config.faults)
                self._state.faults[fault] += 1
            if fault is None:
                delivery = Delivery(
                    key, creator, fan, text, arrived, f"msg_{uuid.uuid4().hex[:16]}"
                )
                self._state.deliveries.append(delivery)
                self._state.by_key[key] = delivery
        if self.config.latency_ms:  # after recording: widens the delivered-but-unacked window
            await asyncio.sleep(self.config.latency_ms / 1000)
        if fault == "timeout":
            await asyncio.sleep(self.config.timeout_sleep)
            return web.json_response({"error": "late"}, status=504)
        if fault is not None:
            headers = {"Retry-After": "0"} if fault == "429" else None
            return web.json_response(
                {"error": f"injected {fault}"}, status=int(fault), headers=headers
            )
        return web.json_response({"id": delivery.message_id, "status": "sent"}, status=201)
