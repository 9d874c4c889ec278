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
from worker.http import JsonPoster, NetworkError, Reply
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
        self.timeout = timeout
        self._client = JsonPoster(
            base_url, headers, connections=256, connect_timeout=5.0, transport=transport
        )

    async def close(self) -> None:
        await self._client.close()

    async def send(self, *, creator_id: str, fan_id: str, text: str, key: str) -> str:
        """Deliver one message; return the gateway's message id."""
        try:
            response = await self._client.post(
                "/messages",
                {"creatorId": creator_id, "fanId": fan_id, "text": text},
                time_limit=self.timeout,
                headers={"Idempotency-Key": key},
            )
        except TimeoutError as exc:
            raise ProviderTimeout(f"gateway: timed out after {self.timeout:g}s") from exc
        except NetworkError as exc:
            raise ProviderNetworkError(f"gateway: {exc}") from exc
        if response.is_success:
            try:
                return str(response.json()["id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise ProviderServerError("gateway: response lacks an id") from exc
        raise _classify(response)


def _classify(response: Reply) -> WorkerError:
    try:
        reason = str(response.json().get("error", ""))[:200]
    except ValueError:
        reason = response.text[:200]
    detail = f"gateway: HTTP {response.status}" + (f": {reason}" if reason else "")
    if response.status == 429:
        return ProviderRateLimited(detail, retry_after=retry_after_seconds(response.headers))
    if response.status >= 500 or response.status == 408:
        return ProviderServerError(detail)
    return PermanentError(detail, code="gateway_rejected")
