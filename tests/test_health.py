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


def test_processes_need_their_health_ports_free() -> None:
    from worker.ops.supervisor import check_ports, health_ports

    assert health_ports(8080, 3) == [8080, 8081, 8082]
    assert health_ports(0, 3) == []
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(ConfigError) as err:
            check_ports("127.0.0.1", taken - 1, 2)
    assert str(taken) in str(err.value)
    assert "FLEET_HEALTH_PORT" in str(err.value)
    with pytest.raises(ConfigError, match="65535"):
        check_ports("127.0.0.1", 65535, 2)
    check_ports("127.0.0.1", 0, 4)  # endpoints off: nothing to check


def test_the_exit_line_is_a_sentence() -> None:
    from worker.consumer import FleetStats

    stats = FleetStats(received=12, released=1, outcomes={"completed": 10, "dead_lettered": 2})
    assert stats.sentence() == (
        "worker stopped after 12 messages: 10 completed, 2 dead_lettered; "
        "1 released for another worker."
    )
    assert FleetStats().sentence() == "worker stopped after 0 messages: nothing done."
