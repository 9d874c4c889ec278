"""The `fleet` command as a subprocess: its environment, one-shot runs, logged workers."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

from pydantic import SecretStr

from worker.config import Settings, setting_name

FLEET = [sys.executable, "-m", "worker.cli"]
# The docs promise exit within FLEET_SHUTDOWN_GRACE after SIGTERM; SIGTERM tests allow
# this much more for interpreter exit and closing pools on a loaded machine.
SHUTDOWN_MARGIN = 3.0


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a `fleet` subprocess needs to run with exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "AWS_"))}
    for name in (
        "DATABASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "AZURE_OPENAI_ENDPOINT",
        "AZURE_OPENAI_API_KEY",
        "AZURE_OPENAI_DEPLOYMENT",
        "AZURE_OPENAI_AD_TOKEN",
    ):
        env.pop(name, None)
    for field, info in Settings.model_fields.items():
        value = getattr(settings, field)
        if value is None or value == info.default:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, tuple):
            value = ",".join(map(str, value))
        elif isinstance(value, dict):  # models inside (FLEET_VARIANTS) as their JSON
            value = json.dumps(value, default=lambda model: model.model_dump(exclude_none=True))
        env[setting_name(field)] = str(value)
    env["FLEET_LOG_LEVEL"] = "INFO"  # the tests read the workers' event names
    env.update(extra)
    return env


def fleet(args: list[str], env: dict[str, str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLEET, *args], env=env, capture_output=True, text=True, timeout=120, check=False, **kw
    )


def dlq_json(settings: Settings, *args: str) -> list[dict[str, Any]]:
    """`fleet dlq list` as JSON (through the old --json flag, kept as an alias)."""
    result = fleet(["dlq", "list", "--json", *args], env_for(settings))
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


class LoggedProcess:
    """A `fleet` subprocess whose stderr goes to a file (a pipe nobody reads would fill
    up and block the worker mid-log)."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Any) -> None:
        self.proc = proc
        self._log = log

    @classmethod
    async def start(cls, args: list[str], env: dict[str, str]) -> LoggedProcess:
        import sys
        import tempfile

        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by finish()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker.cli",
            *args,
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        return cls(proc, log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def send_signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    async def finish(self, signum: int | None = None, within: float = 60) -> tuple[int, str]:
        """Signal it (if still running), wait, and return (exit code, stderr)."""
        if signum is not None and self.proc.returncode is None:
            self.proc.send_signal(signum)
        try:
            await asyncio.wait_for(self.proc.wait(), within)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        self._log.seek(0)
        text = self._log.read().decode(errors="replace")
        self._log.close()
        return int(self.proc.returncode or 0), text
