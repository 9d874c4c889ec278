"""JSON over HTTP POST for the providers and the send gateway.

Production posts with aiohttp: httpx's pool (httpcore) scans every pooled
connection on each request, which at 64+ requests in flight was half the
worker's CPU, and httpx's request model cost another tenth (py-spy, see
docs/decisions.md). Unit tests hand in an ``httpx`` transport (usually
``httpx.MockTransport``) instead, so they script replies without a server.
Either way callers see one ``Reply`` and two errors: ``TimeoutError`` and
``NetworkError``.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import certifi
import httpx

__all__ = ["JsonPoster", "NetworkError", "Reply"]


class NetworkError(Exception):
    """The request did not get an HTTP answer (refused, reset, DNS...)."""


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
        return json.loads(self.body)


def _proxy_for(url: str) -> str | None:
    """HTTPS_PROXY / HTTP_PROXY / NO_PROXY for this base URL, read once (aiohttp's
    ``trust_env`` reads them, and ~/.netrc, on every request: a third of the CPU)."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class JsonPoster:
    """A pooled client for one base URL; each ``post`` is bounded as a whole by its
    ``time_limit`` (not per read, so a slow drip cannot hold a handler)."""

    def __init__(
        self,
        base_url: str,
        headers: dict[str, str],
        *,
        connections: int,
        connect_timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {**headers, "Content-Type": "application/json"}
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(sock_connect=connect_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._proxy = _proxy_for(self._base)
        self._httpx = (
            httpx.AsyncClient(base_url=self._base, headers=headers, transport=transport)
            if transport is not None
            else None
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._httpx is not None:
            await self._httpx.aclose()

    async def post(
        self,
        path: str,
        body: Any,
        *,
        time_limit: float,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        if self._httpx is not None:
            return await self._post_httpx(path, body, time_limit, headers)
        if self._session is None:  # created inside the running loop, on first use
            # certifi's CAs, as httpx used them before
            tls = ssl.create_default_context(cafile=certifi.where())
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, ssl=tls),
                headers=self._headers,
            )
        payload = json.dumps(body).encode()
        try:
            async with asyncio.timeout(time_limit):
                async with self._session.post(
                    self._base + path,
                    data=payload,
                    headers=headers,
                    proxy=self._proxy,
                    timeout=self._timeout,
                ) as response:
                    return Reply(response.status, response.headers, await response.read())
        except TimeoutError:
            raise
        except (aiohttp.ClientError, OSError) as exc:
            raise NetworkError(type(exc).__name__) from exc

    async def _post_httpx(
        self, path: str, body: Any, time_limit: float, headers: Mapping[str, str] | None
    ) -> Reply:
        assert self._httpx is not None
        try:
            async with asyncio.timeout(time_limit):
                response = await self._httpx.post(
                    path, json=body, headers=headers, timeout=httpx.Timeout(time_limit)
                )
        except httpx.TimeoutException as exc:
            raise TimeoutError(type(exc).__name__) from exc
        except httpx.TransportError as exc:
            raise NetworkError(type(exc).__name__) from exc
        return Reply(response.status_code, response.headers, response.content)
