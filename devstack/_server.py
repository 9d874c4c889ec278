"""An aiohttp app served from a thread of its own, on a free loopback port."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

__all__ = ["ThreadedApp"]


class ThreadedApp:
    """Subclasses add routes in ``routes()``; ``with App() as app: app.endpoint``."""

    name = "fake"

    def __init__(self) -> None:
        self.endpoint = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def start(self) -> ThreadedApp:
        self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{self.name} server did not start")
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application()
        self.routes(app)
        # a fake stops at once: handlers still sleeping (injected timeouts) are cancelled
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.endpoint = f"http://127.0.0.1:{runner.addresses[0][1]}"
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = None
        self._thread = None
