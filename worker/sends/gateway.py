"""The send gateway client: the only module that talks to the OnlyFans gateway.

``POST {FLEET_SEND_GATEWAY_URL}/messages`` with a bearer token and an
``Idempotency-Key`` header; the gateway answers a repeated key with the
original result instead of delivering twice.
"""

from __future__ import annotations

import httpx

from worker.errors import (
    PermanentError,
    ProviderNetworkError,
    ProviderRateLimited,
    ProviderServerError,
    ProviderTimeout,
    WorkerError,
)
from worker.http import NETWORK_ERRORS, pooled_client
from worker.providers.headers import retry_after_seconds

__all__ = ["GatewayClient"]


class GatewayClient:
    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = pooled_client(
            base_url, headers, timeout=timeout, connect=5.0, connections=256, transport=transport
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, *, creator_id: str, fan_id: str, text: str, key: str) -> str:
        """Deliver one message; return the gateway's message id."""
        try:
            response = await self._client.post(
                "/messages",
                json={"creatorId": creator_id, "fanId": fan_id, "text": text},
                headers={"Idempotency-Key": key},
            )
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"gateway: timed out ({type(exc).__name__})") from exc
        except NETWORK_ERRORS as exc:
            raise ProviderNetworkError(f"gateway: {type(exc).__name__}") from exc
        if response.is_success:
            try:
                return str(response.json()["id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ProviderServerError("gateway: response lacks an id") from exc
        raise _classify(response)


def _classify(response: httpx.Response) -> WorkerError:
    try:
        reason = str(response.json().get("error", ""))[:200]
    except ValueError:
        reason = response.text[:200]
    detail = f"gateway: HTTP {response.status_code}" + (f": {reason}" if reason else "")
    if response.status_code == 429:
        return ProviderRateLimited(detail, retry_after=retry_after_seconds(response.headers))
    if response.status_code >= 500 or response.status_code == 408:
        return ProviderServerError(detail)
    return PermanentError(detail, code="gateway_rejected")
