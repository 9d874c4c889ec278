"""One way to build the pooled HTTP client the providers and the send gateway use.

The API is httpx's (tests swap the transport for ``httpx.MockTransport``); the
sockets are aiohttp's. httpcore's own pool scans every pooled connection on
each request, which at 64+ requests in flight cost half the worker's CPU
(measured with py-spy, docs/decisions.md); aiohttp's connector does not.
"""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["NETWORK_ERRORS", "pooled_client"]

# Raised by the transport when aiohttp meets something httpx has no name for.
NETWORK_ERRORS = (httpx.TransportError, aiohttp.ClientError, ConnectionError)


def pooled_client(
    base_url: str,
    headers: dict[str, str],
    *,
    timeout: float,
    connect: float,
    connections: int,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        headers=headers,
        timeout=httpx.Timeout(timeout, connect=min(timeout, connect)),
        limits=limits,
        transport=transport or AiohttpTransport(limits=limits, trust_env=False),
    )
