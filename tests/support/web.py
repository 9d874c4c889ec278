"""A test's own HTTP server: an aiohttp app in the test's loop, on a free port."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

__all__ = ["serving"]


@contextlib.asynccontextmanager
async def serving(posts: dict[str, Handler]) -> AsyncIterator[str]:
    """Serve ``posts`` (path -> handler of POSTs) on a free loopback port; yields the
    base URL (no trailing slash)."""
    app = web.Application()
    for path, handler in posts.items():
        app.router.add_post(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
