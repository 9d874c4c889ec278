"""JSON over HTTP POST for the providers and the send gateway.

A hand-made aiohttp poster: httpx's pool (httpcore) scans every pooled
connection on each request, half the worker's CPU at 64+ requests in flight,
and httpx's API over an aiohttp transport still costs about three times the
CPU per request of this one (``python -m devstack.poster_bench``,
docs/decisions.md #23 and #30). Unit tests hand in a ``Send`` of their own
instead of the wire, so they script replies without a server. Either way
callers see one ``Reply``, or one of our errors (``translate.EXC_MAP``).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import certifi

from worker import codec
from worker.config.proxies import proxy_for
from worker.outbound.translate import translated

__all__ = ["JsonPoster", "Reply", "Send"]


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON (``ValueError`` when it is not)."""
        return codec.loads(self.body)


Send = Callable[[str, bytes, Mapping[str, str]], Awaitable[Reply]]
"""``(url, body, headers) -> Reply``: the wire, which a unit test may replace."""


class JsonPoster:
    """A pooled client of one service at one base URL; each ``post`` is bounded as a
    whole by its ``time_limit`` (not per read, so a slow drip cannot hold a handler)."""

    def __init__(
        self,
        service: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        connections: int,
        connect_timeout: float,
        send: Send | None = None,
    ) -> None:
        self.service = service
        self._base = base_url.rstrip("/")
        self._headers = {**headers, "Content-Type": "application/json"}
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(sock_connect=connect_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._proxy = proxy_for(self._base)
        self._send = send

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(
        self,
        path: str,
        body: Any,
        *,
        time_limit: float,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One POST of ``body`` as JSON; our error if no HTTP answer came in time."""
        payload = codec.dumps(body)
        with translated(self.service, time_limit):
            async with asyncio.timeout(time_limit):
                if self._send is not None:
                    return await self._send(
                        self._base + path, payload, {**self._headers, **(headers or {})}
                    )
                return await self._wire(self._base + path, payload, headers)

    async def _wire(self, url: str, payload: bytes, headers: Mapping[str, str] | None) -> Reply:
        if self._session is None:  # created inside the running loop, on first use
            tls = ssl.create_default_context(cafile=certifi.where())
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, ssl=tls),
                headers=self._headers,
            )
        async with self._session.post(
            url, data=payload, headers=headers, proxy=self._proxy, timeout=self._timeout
        ) as response:
            return Reply(response.status, response.headers, await response.read())
