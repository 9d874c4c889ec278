"""A local HTTP fake of the OnlyFans send gateway.

``POST /messages`` with ``Idempotency-Key``. Every request that reaches it is
recorded in ``requests`` with what became of it:

    delivered     a key not seen before: the message reaches the fan
    replayed      a key already delivered: the first answer comes back with
                  ``Idempotent-Replayed: true`` and nothing new reaches the fan
    fault:KIND    an injected 429 / 500 / 503 / timeout: nothing delivered
    unauthorized  wrong or missing bearer token
    invalid       no key, or a body without creatorId / fanId / text

``deliveries`` are the ``delivered`` ones, the messages fans got. A new key
for a (creator, fan) that already got a message is a second delivery, as it
would be at the real gateway: ``duplicates()`` counts those. Faults by config:
a rate of 429 / 500 / 503 / timeouts, and a fixed latency (to widen the window
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

__all__ = ["Delivery", "FakeGateway", "GatewayConfig", "GatewayRequest"]

Pair = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Delivery:
    key: str
    creator_id: str
    fan_id: str
    text: str
    at: float  # time.time() at arrival
    message_id: str


@dataclass(frozen=True, slots=True)
class GatewayRequest:
    """One request as it reached the gateway, and what became of it."""

    at: float
    key: str
    creator_id: str
    fan_id: str
    outcome: str
    status: int


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
    requests: list[GatewayRequest] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)


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

    # --- observation -----------------------------------------------------
    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._state.deliveries)

    @property
    def requests(self) -> list[GatewayRequest]:
        """Every request that reached the gateway, in arrival order."""
        with self._lock:
            return list(self._state.requests)

    @property
    def replays(self) -> int:
        return sum(r.outcome == "replayed" for r in self.requests)

    @property
    def faults(self) -> Counter[str]:
        return self._state.faults

    def per_pair(self) -> dict[Pair, list[float]]:
        pairs: dict[Pair, list[float]] = {}
        for d in self.deliveries:
            pairs.setdefault((d.creator_id, d.fan_id), []).append(d.at)
        return {pair: sorted(times) for pair, times in pairs.items()}

    def duplicates(self, allowed: int = 1) -> int:
        """Deliveries to a (creator, fan) beyond ``allowed`` each: a fan that got the
        same send twice under two keys counts here (a replayed key does not: the fan got
        nothing new)."""
        return sum(max(0, len(times) - allowed) for times in self.per_pair().values())

    # --- behaviour -------------------------------------------------------
    def _record(self, arrived: float, key: str, pair: Pair, outcome: str, status: int) -> None:
        with self._lock:
            self._state.requests.append(GatewayRequest(arrived, key, *pair, outcome, status))

    async def _messages(self, request: web.Request) -> web.Response:
        arrived = time.time()
        key = request.headers.get("Idempotency-Key", "")
        try:
            body = await request.json()
            creator, fan, text = str(body["creatorId"]), str(body["fanId"]), str(body["text"])
        except (ValueError, KeyError, TypeError):
            self._record(arrived, key, ("", ""), "invalid", 422)
            return web.json_response({"error": "body needs creatorId, fanId, text"}, status=422)
        pair = (creator, fan)
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            self._record(arrived, key, pair, "unauthorized", 401)
            return web.json_response({"error": "unauthorized"}, status=401)
        if not key:
            self._record(arrived, key, pair, "invalid", 400)
            return web.json_response({"error": "Idempotency-Key header is required"}, status=400)
        delivery, fault, replayed = self._accept(arrived, key, pair, text)
        if replayed:
            return web.json_response(
                {"id": delivery.message_id, "status": "sent"},
                headers={"Idempotent-Replayed": "true"},
            )
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

    def _accept(
        self, arrived: float, key: str, pair: Pair, text: str
    ) -> tuple[Delivery, str | None, bool]:
        """(the delivery, the injected fault or None, whether the key was a replay)."""
        with self._lock:
            known = self._state.by_key.get(key)
            if known is not None:
                self._state.requests.append(GatewayRequest(arrived, key, *pair, "replayed", 200))
                return known, None, True
            fault = None
            if self.config.fault_rate and self._rng.random() < self.config.fault_rate:
                fault = self._rng.choice(self.config.faults)
                self._state.faults[fault] += 1
            delivery = Delivery(key, *pair, text, arrived, f"msg_{uuid.uuid4().hex[:16]}")
            if fault is None:
                self._state.deliveries.append(delivery)
                self._state.by_key[key] = delivery
                outcome, status = "delivered", 201
            else:
                outcome = f"fault:{fault}"
                status = 504 if fault == "timeout" else int(fault)
            self._state.requests.append(GatewayRequest(arrived, key, *pair, outcome, status))
            return delivery, fault, False
