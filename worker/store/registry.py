"""The worker registry (``workers``): who is running, last seen when, with how much work."""

from __future__ import annotations

from worker.store.pool import Connects

__all__ = ["WorkerRegistry"]

_SEEN = """
INSERT INTO workers (id, host, pid, in_flight) VALUES (%s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET last_seen = now(), in_flight = EXCLUDED.in_flight
"""

_LIVE = "SELECT count(*) AS n FROM workers WHERE last_seen > now() - make_interval(secs => %s)"


class WorkerRegistry:
    def __init__(self, db: Connects) -> None:
        self._db = db

    async def seen(self, worker_id: str, host: str, pid: int, in_flight: int) -> None:
        async with self._db.connection() as conn:
            await conn.execute(_SEEN, (worker_id, host, pid, in_flight))

    async def gone(self, worker_id: str) -> None:
        async with self._db.connection() as conn:
            await conn.execute("DELETE FROM workers WHERE id = %s", (worker_id,))

    async def live(self, within_seconds: float = 60.0) -> int:
        """How many workers reported within the last ``within_seconds``."""
        async with self._db.connection() as conn:
            row = await (await conn.execute(_LIVE, (within_seconds,))).fetchone()
        return int(row["n"]) if row else 0
