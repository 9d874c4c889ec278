"""The send gateway client: the only module that talks to the OnlyFans gateway.

``POST {FLEET_SEND_GATEWAY_URL}/messages`` with a bearer token and an
``Idempotency-Key`` header; the gateway answers a repeated key with the
original result instead of delivering twice.
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind

from worker.errors import UpstreamUnavailable
from worker.observability.spans import span
from worker.observability.tracing import inject_headers
from worker.outbound import JsonPoster, Send, status_error

__all__ = ["GatewayClient"]

_HTTP = {"http.request.method": "POST", "url.path": "/messages", "fleet.peer": "gateway"}


class GatewayClient:
    """``send`` replaces the wire in unit tests."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 10.0,
        send: Send | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.timeout = timeout
        self._client = JsonPoster(
            "gateway", base_url, headers, connections=256, connect_timeout=5.0, send=send
        )

    async def close(self) -> None:
        await self._client.close()

    async def send(self, *, creator_id: str, fan_id: str, text: str, key: str) -> str:
        """Deliver one message; return the gateway's message id."""
        headers = {"Idempotency-Key": key}
        with span("POST gateway /messages", kind=SpanKind.CLIENT, attributes=_HTTP) as call:
            inject_headers(headers)  # the gateway may join the trace
            response = await self._client.post(
                "/messages",
                {"creatorId": creator_id, "fanId": fan_id, "text": text},
                time_limit=self.timeout,
                headers=headers,
            )
            call.set_attribute("http.response.status_code", response.status)
        if response.is_success:
            try:
                return str(response.json()["id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise UpstreamUnavailable("gateway: response lacks an id") from exc
        try:
            reason = str(response.json().get("error", ""))[:200]
        except (ValueError, AttributeError):
            reason = response.text[:200]
        raise status_error("gateway", response.status, response.headers, message=reason)
