"""`fleet console`: the web console for support, creator-success and finance."""

from __future__ import annotations

import click

from worker.commands.common import console as out
from worker.commands.common import friendly
from worker.commands.common import settings_from_env as load

__all__ = ["console"]


@click.command()
@click.option("--host", help="Address to bind (default FLEET_CONSOLE_HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default FLEET_CONSOLE_PORT, 8090).")
@click.option(
    "--metrics-url",
    multiple=True,
    help="Worker /metrics URLs for breaker states (default: local FLEET_HEALTH_PORT).",
)
@friendly
def console(host: str | None, port: int | None, metrics_url: tuple[str, ...]) -> None:
    """Serve the web console (overview, workflows, dead letters, costs) behind a token."""
    from aiohttp import web

    from worker.console import build_app

    overrides: dict[str, object] = {}
    if host:
        overrides["console_host"] = host
    if port is not None:
        overrides["console_port"] = port
    settings = load(**overrides)
    urls = list(metrics_url) or (
        [f"http://127.0.0.1:{settings.health_port}/metrics"] if settings.health_port else []
    )
    app = build_app(settings, metrics_urls=urls)
    out.print(f"fleet console on http://{settings.console_host}:{settings.console_port}/")
    web.run_app(
        app,
        host=settings.console_host,
        port=settings.console_port,
        print=None,
        handle_signals=True,
    )
