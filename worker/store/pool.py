"""The connection pool, and the one place psycopg errors become fleet errors.

Every query the fleet runs goes through ``Pool.connection()`` (or a ``Store``,
which hands out the same connections): inside it, a psycopg or pool error is
translated by ``ERRORS``, a table read top to bottom like httpx's
``map_exceptions``. Adding a case is one line. Code below this module may catch
psycopg errors to decide what to do (retry a batch row by row), never to raise
them further or make fleet errors of them by hand: ``translate`` does that.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import Any, Protocol

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from worker.errors import StoreUnavailable, WorkerError

__all__ = ["ERRORS", "Conn", "Connects", "Pool", "Row", "map_errors", "translate"]

Row = dict[str, Any]
Conn = psycopg.AsyncConnection[Row]
CONNECT_TIMEOUT: dict[str, Any] = {
    "connect_timeout": 2
}  # seconds per attempt (libpq's minimum is 2)

# third-party type -> (ours, what it means); first match wins, most specific first
ERRORS: tuple[tuple[type[BaseException], type[WorkerError], str], ...] = (
    (PoolTimeout, StoreUnavailable, "database pool timeout"),
    (psycopg.OperationalError, StoreUnavailable, "database unreachable"),
    (psycopg.Error, StoreUnavailable, "database error"),
    (TimeoutError, StoreUnavailable, "database pool timeout"),
)


class Connects(Protocol):
    """Anything that lends connections: a ``Pool`` or a ``Store``."""

    def connection(self) -> AbstractAsyncContextManager[Conn]: ...


def translate(exc: BaseException, doing: str = "") -> WorkerError | None:
    """The fleet error for a third-party ``exc`` (None: not one of ours to translate), in
    one line (libpq's messages span several)."""
    for theirs, ours, meaning in ERRORS:
        if isinstance(exc, theirs):
            prefix = f"{doing}: " if doing else ""
            said = " ".join(str(exc).split())
            return ours(f"{prefix}{meaning}: {type(exc).__name__}: {said}")
    return None


class _Quiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


@contextmanager
def _quiet_pool_log() -> Iterator[None]:
    """psycopg_pool warns once per failed connection attempt while it opens; the one
    error that ``open`` raises says it all, so those warnings are held back meanwhile."""
    logger, quiet = logging.getLogger("psycopg.pool"), _Quiet()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


@contextmanager
def map_errors(doing: str = "") -> Iterator[None]:
    """Raise the translation of any error ``ERRORS`` knows, chained to the original."""
    try:
        yield
    except WorkerError:
        raise
    except Exception as exc:
        ours = translate(exc, doing)
        if ours is None:
            raise
        raise ours from exc


class Pool:
    """A psycopg 3 async pool of autocommit connections returning dict rows."""

    def __init__(self, database_url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self._url = database_url
        self._min = min_size
        self._max = max_size
        self._pool: AsyncConnectionPool[Conn] | None = None

    async def open(self, wait_seconds: float = 10.0) -> None:
        """Reach the database once (each attempt bounded by ``CONNECT_TIMEOUT`` unless the
        URL sets ``connect_timeout``), then open the pool: an unreachable database fails
        in seconds, with libpq's reason in one line, not a pool timeout after retries."""
        timeout: dict[str, Any] = (
            {} if "connect_timeout" in conninfo_to_dict(self._url) else CONNECT_TIMEOUT
        )
        with map_errors("cannot reach the database"):
            probe = await psycopg.AsyncConnection.connect(self._url, **timeout)
            await probe.close()
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self._url,
            min_size=self._min,
            max_size=self._max,
            open=False,
            kwargs={"row_factory": dict_row, "autocommit": True, **timeout},
            connection_class=psycopg.AsyncConnection[Row],
        )
        try:
            with _quiet_pool_log(), map_errors("cannot open the database pool"):
                await pool.open(wait=True, timeout=wait_seconds)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A connection for the block; any database error in it leaves as ours."""
        if self._pool is None:
            raise StoreUnavailable("store is not open")
        with map_errors():
            async with self._pool.connection() as conn:
                yield conn

    async def ping(self) -> None:
        async with self.connection() as conn:
            await conn.execute("SELECT 1")
