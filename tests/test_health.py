"""The health endpoint: a taken port is one line naming the setting, not a traceback."""

from __future__ import annotations

import socket

import pytest

from worker.errors import ConfigError
from worker.observability import HealthServer, Metrics


async def _fine() -> tuple[bool, str]:
    return True, "ok"


async def test_a_taken_health_port_names_the_setting() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = HealthServer(port, live=_fine, ready=_fine, metrics=Metrics())
        with pytest.raises(ConfigError) as err:
            await server.start()
    assert f"FLEET_HEALTH_PORT {port}" in str(err.value)
    assert "FLEET_HEALTH_HOST 127.0.0.1" in str(err.value)


async def test_the_endpoint_binds_loopback_by_default() -> None:
    server = HealthServer(0, live=_fine, ready=_fine, metrics=Metrics())
    await server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=2):
            pass
    finally:
        await server.stop()
