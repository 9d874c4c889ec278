"""Rate control state (migration 0013): provider time leases and per-user start slots.

Both are GCRA-style reservations held in one row per key: a statement advances the
row and returns how long the caller must wait, measured by the database's clock and
returned as seconds-from-now, so processes on machines with skewed clocks agree.
"""

from __future__ import annotations

from worker.store.pool import Connects

__all__ = ["RateTable"]

_LEASE = """
INSERT INTO rate_leases AS r (key, next_at)
VALUES (%(key)s, now() + make_interval(secs => %(span)s))
ON CONFLICT (key) DO UPDATE
   SET next_at = GREATEST(r.next_at, now()) + make_interval(secs => %(span)s)
RETURNING extract(epoch FROM (next_at - now()))::float8 - %(span)s AS starts_in
"""

_PAUSE = """
INSERT INTO rate_leases AS r (key, next_at, paused_at, pause_s)
VALUES (%(key)s, now() + make_interval(secs => %(pause)s), now(), %(pause)s)
ON CONFLICT (key) DO UPDATE
   SET next_at = GREATEST(r.next_at, now() + make_interval(secs => %(pause)s)),
       paused_at = now(), pause_s = %(pause)s
"""

_SLOT = """
SELECT extract(epoch FROM (due_at - now()))::float8 AS due_in
  FROM user_rate_slots WHERE workflow_id = %s
"""

_BOOK = """
INSERT INTO user_rates AS u (user_id, tat)
VALUES (%(user)s, now() + make_interval(secs => %(interval)s))
ON CONFLICT (user_id) DO UPDATE
   SET tat = GREATEST(u.tat, now()) + make_interval(secs => %(interval)s)
RETURNING GREATEST(0, extract(epoch FROM (tat - now()))::float8 - %(interval)s - %(tau)s)
       AS wait
"""

_KEEP_SLOT = """
INSERT INTO user_rate_slots (workflow_id, user_id, due_at)
VALUES (%s, %s, now() + make_interval(secs => %s))
ON CONFLICT (workflow_id) DO UPDATE SET due_at = EXCLUDED.due_at
"""

_USE_SLOT = "DELETE FROM user_rate_slots WHERE workflow_id = %s"


class RateTable:
    """The SQL of ``worker.limits``."""

    def __init__(self, db: Connects) -> None:
        self._db = db

    async def lease(self, key: str, span: float) -> float:
        """Book ``span`` seconds of the key's provider time: seconds until it starts
        (0 when the provider is idle; later when other processes booked ahead)."""
        async with self._db.connection() as conn:
            row = await (await conn.execute(_LEASE, {"key": key, "span": span})).fetchone()
        assert row is not None
        return max(0.0, float(row["starts_in"]))

    async def pause(self, key: str, seconds: float) -> None:
        """No provider time is handed out for ``seconds`` from now (the provider said so)."""
        async with self._db.connection() as conn:
            await conn.execute(_PAUSE, {"key": key, "pause": seconds})

    async def user_start(
        self,
        workflow_id: str,
        user_id: str,
        interval: float,
        tolerance: float,
        in_place: float = 1.0,
    ) -> float:
        """Seconds until this workflow may start (0: now). A workflow told to wait
        ``in_place`` seconds or more keeps its slot (it is not charged again when it
        comes back); a nearer slot is the caller's to wait for and is given up."""
        async with self._db.connection() as conn, conn.transaction():
            kept = await (await conn.execute(_SLOT, (workflow_id,))).fetchone()
            if kept is not None:
                due_in = max(0.0, float(kept["due_in"]))
                if due_in < in_place:
                    await conn.execute(_USE_SLOT, (workflow_id,))
                return due_in
            params = {"user": user_id, "interval": interval, "tau": tolerance}
            row = await (await conn.execute(_BOOK, params)).fetchone()
            assert row is not None
            wait = float(row["wait"])
            if wait >= in_place:
                await conn.execute(_KEEP_SLOT, (workflow_id, user_id, wait))
            return wait
