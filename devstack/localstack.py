"""LocalStack run on the host, without Docker, in its own virtual environment.

See ``shared/notes/local-sqs.md``: it pins its own botocore, so it lives in
``.localstack/`` (made by ``make install``), and all its state goes to a temp
dir that is removed on stop.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from worker.errors import ConfigError

__all__ = ["LocalStack", "find_localstack_python", "free_port"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_localstack_python() -> Path:
    """``FLEET_LOCALSTACK_PYTHON``, else ``.localstack/bin/python`` here or above the package."""
    given = os.environ.get("FLEET_LOCALSTACK_PYTHON")
    if given:
        return Path(given)
    places = [Path.cwd(), *Path.cwd().parents, Path(__file__).resolve().parents[1]]
    for place in places:
        candidate = place / ".localstack" / "bin" / "python"
        if candidate.exists():
            return candidate
    raise ConfigError(
        "LocalStack is not installed: run `make install` (it creates .localstack/), "
        "or set FLEET_LOCALSTACK_PYTHON, or point AWS_ENDPOINT_URL_SQS at a running SQS"
    )


class LocalStack:
    """Start and stop one LocalStack process. ``with LocalStack() as ls: ls.endpoint``."""

    def __init__(self, python: Path | None = None, port: int | None = None) -> None:
        self._python = python
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> LocalStack:
        python = self._python or find_localstack_python()
        self._dir = Path(tempfile.mkdtemp(prefix="fleet-localstack-"))
        (self._dir / "home").mkdir()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self._dir / "home"),
            "FILESYSTEM_ROOT": str(self._dir / "fs"),
            "LOCALSTACK_VOLUME_DIR": str(self._dir / "volume"),
            "GATEWAY_LISTEN": f"127.0.0.1:{self.port}",
            "DNS_ADDRESS": "0",
            "SERVICES": "sqs,s3,cloudwatch,cloudformation",  # s3: bodies sent as pointers
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "SQS_ENDPOINT_STRATEGY": "path",
            # LocalStack otherwise makes a PutMetricData call to itself for every
            # send, receive and delete (AWS/SQS metrics the fleet does not read):
            # half its CPU under load.
            "SQS_DISABLE_CLOUDWATCH_METRICS": "1",
            "OVERRIDE_IN_DOCKER": "0",
            "GATEWAY_SERVER": "hypercorn",
        }
        log = (self._dir / "localstack.log").open("wb")
        self._proc = subprocess.Popen(
            [str(python), "-m", "localstack.runtime.main"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"{self.endpoint}/_localstack/health"
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"LocalStack exited early; see its log:\n{self.log_tail()}")
            try:
                reply = httpx.get(url, timeout=2.0)
                if reply.status_code == 200 and reply.json().get("services", {}).get("sqs") in (
                    "available",
                    "running",
                ):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"LocalStack did not become ready in {timeout:.0f} s")

    def log_tail(self, lines: int = 30) -> str:
        if self._dir is None:
            return ""
        path = self._dir / "localstack.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            try:
                os.killpg(self._proc.pid, signal.SIGTERM)
                self._proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=5)
        self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
