"""The health and metrics endpoint (aiohttp, one port).

* ``/healthz``  liveness: the poll loop made progress within the limit (a hung
  loop fails it; a process so stuck that it cannot answer fails it too);
* ``/readyz``   readiness: SQS and Postgres answer, and the worker is not
  shutting down;
* ``/metrics``  Prometheus text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from worker.errors import ConfigError
from worker.observability.metrics import Metrics

__all__ = ["Check", "HealthServer"]

Check = Callable[[], Awaitable[tuple[bool, str]]]


class HealthServer:
    def __init__(
        self, port: int, *, live: Check, ready: Check, metrics: Metrics, host: str = "127.0.0.1"
    ) -> None:
        self.port = port
        self._host = host
        self._live = live
        self._ready = ready
        self._metrics = metrics
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._prometheus)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                f"FLEET_HEALTH_PORT {self.port} on FLEET_HEALTH_HOST {self._host} cannot be "
                f"bound ({exc.strerror or exc}): another worker may hold it; give each "
                "worker its own port, or 0 to turn the endpoint off"
            ) from exc
        self.port = int(runner.addresses[0][1])
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @staticmethod
    def _reply(ok: bool, detail: str) -> web.Response:
        return web.json_response({"ok": ok, "detail": detail}, status=200 if ok else 503)

    async def _healthz(self, _request: web.Request) -> web.Response:
        return self._reply(*await self._live())

    async def _readyz(self, _request: web.Request) -> web.Response:
        return self._reply(*await self._ready())

    async def _prometheus(self, _request: web.Request) -> web.Response:
        response = web.Response(body=self._metrics.prometheus())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
