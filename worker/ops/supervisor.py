"""`fleet run --processes N`: N worker processes under one supervisor.

The supervisor restarts a child that dies (with a growing pause if it keeps
dying), forwards SIGTERM/SIGINT to every child, waits for them to drain, and
exits 0 when they all did. With ``until_idle`` each child runs
``--until-idle``: one that exits 0 has drained the queue and is not restarted
(one that fails still is), and the supervisor exits 0 once every child has
exited 0. Child ``i`` serves health on FLEET_HEALTH_PORT + i.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

import structlog

from worker.errors import ConfigError

__all__ = ["Supervisor", "check_ports", "health_ports"]

log = structlog.get_logger("worker.supervisor")


def health_ports(base: int, count: int) -> list[int]:
    """The health ports of ``count`` children: FLEET_HEALTH_PORT + i (none when 0)."""
    return [base + index for index in range(count)] if base else []


def check_ports(host: str, base: int, count: int) -> None:
    """Refuse to start children whose health ports are out of range or already taken."""
    ports = health_ports(base, count)
    if ports and ports[-1] > 65535:
        raise ConfigError(
            f"FLEET_HEALTH_PORT {base} + {count} processes runs past port 65535: "
            "lower FLEET_HEALTH_PORT or use fewer processes"
        )
    taken = []
    for port in ports:
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                taken.append(port)
    if taken:
        raise ConfigError(
            f"health port(s) {', '.join(map(str, taken))} on FLEET_HEALTH_HOST {host} are "
            f"taken; --processes {count} needs FLEET_HEALTH_PORT {base} to {ports[-1]} free "
            "(or FLEET_HEALTH_PORT=0 to turn the endpoints off)"
        )


@dataclass(slots=True)
class _Child:
    index: int
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    restarts: int = 0
    drained: bool = False


class Supervisor:
    def __init__(
        self,
        processes: int,
        *,
        health_port: int,
        grace: float,
        health_host: str = "127.0.0.1",
        args: list[str] | None = None,
        until_idle: bool = False,
    ) -> None:
        self._count = processes
        self._health_port = health_port
        self._health_host = health_host
        self._grace = grace
        self._until_idle = until_idle
        self._args = [*(args or []), *(["--until-idle"] if until_idle else [])]
        self._stopping = False
        self._children: list[_Child] = []
        self.restarts = 0

    def _spawn(self, index: int, restarts: int = 0) -> _Child:
        env = dict(os.environ)
        env["FLEET_HEALTH_PORT"] = str(self._health_port + index if self._health_port else 0)
        env["FLEET_WORKER_INDEX"] = str(index)
        process = subprocess.Popen(
            [sys.executable, "-m", "worker.cli", "run", *self._args], env=env
        )
        log.info("child_started", index=index, pid=process.pid, restarts=restarts)
        return _Child(index, process, restarts=restarts)

    def _signal(self, signum: int, _frame: object) -> None:
        if not self._stopping:
            log.info("supervisor_stopping", signal=signal.Signals(signum).name)
        self._stopping = True
        for child in self._children:
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)

    def run(self) -> int:
        check_ports(self._health_host, self._health_port, self._count)
        signal.signal(signal.SIGTERM, self._signal)
        signal.signal(signal.SIGINT, self._signal)
        self._children = [self._spawn(i) for i in range(self._count)]
        while not self._stopping:
            time.sleep(0.25)
            for position, child in enumerate(self._children):
                code = child.process.poll()
                if code is None or child.drained or self._stopping:
                    continue
                if self._until_idle and code == 0:
                    child.drained = True
                    log.info("child_drained", index=child.index)
                    continue
                self._restart(position, child, code)
            if all(child.drained for child in self._children):
                log.info("supervisor_idle", children=len(self._children))
                return 0
        return self._wait()

    def _restart(self, position: int, child: _Child, code: int) -> None:
        uptime = time.monotonic() - child.started
        restarts = 0 if uptime > 60 else child.restarts + 1
        pause = min(30.0, 0.5 * 2 ** max(0, restarts - 1)) if restarts else 0.0
        log.warning(
            "child_exited",
            index=child.index,
            code=code,
            uptime_s=round(uptime, 1),
            restart_in_s=pause,
        )
        time.sleep(pause)
        if not self._stopping:
            self._children[position] = self._spawn(child.index, restarts)
            self.restarts += 1

    def _wait(self) -> int:
        deadline = time.monotonic() + self._grace + 15
        codes = []
        for child in self._children:
            left = max(0.1, deadline - time.monotonic())
            try:
                codes.append(child.process.wait(timeout=left))
            except subprocess.TimeoutExpired:
                log.error("child_killed_after_grace", index=child.index)
                child.process.kill()
                codes.append(child.process.wait())
        log.info("supervisor_stopped", codes=codes)
        return 0 if all(code == 0 for code in codes) else 1
