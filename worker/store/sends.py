"""The OnlyFans send ledger: slot reservation, debounce, delivery state, pair guard.

Spacing is enforced twice, both atomically in PostgreSQL:

* at scheduling, ``send_pairs.last_slot`` hands out slots at least
  ``spacing`` apart per pair (the upsert's row lock serialises reservations
  fleet-wide, in request order);
* at delivery, the pair guard lets a send through only if the pair's last
  delivery attempt is ``spacing`` old (or was this same send's), and stamps
  the attempt, so late or retried sends can never bunch up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from worker.store.pool import Conn, Connects

__all__ = ["Delivery", "ScheduledSend", "SendLedger"]

EARLY_TOLERANCE = 0.25  # seconds: a message due this soon is sent now
# Stamps are taken just before the gateway call; the call itself can be delayed by a busy
# event loop. Two stamps of a pair are kept this much further apart than the spacing, so
# such jitter never brings two arrivals at the gateway closer than the spacing.
GUARD_MARGIN = 0.25


_BY_KEY = "SELECT id, slot_at, status, enqueued FROM onlyfans_sends WHERE idempotency_key = %s"

_PENDING = """
SELECT id, slot_at FROM onlyfans_sends WHERE pair_key = %s AND status = 'scheduled'
 ORDER BY slot_at FOR UPDATE
"""

_RESERVE = """
INSERT INTO send_pairs AS p (pair_key, last_slot) VALUES (%s, now())
ON CONFLICT (pair_key) DO UPDATE
   SET last_slot = GREATEST(p.last_slot + make_interval(secs => %s), now())
RETURNING last_slot
"""

_INSERT_SEND = """
INSERT INTO onlyfans_sends (idempotency_key, workflow_id, campaign_id, user_id, recipient_id,
                            pair_key, slot_at, status, message)
VALUES (%s, %s, %s, %s, %s, %s, %s, 'scheduled', %s) RETURNING id
"""

_SUPERSEDE = """
UPDATE onlyfans_sends SET status = 'superseded', superseded_by = %s, updated_at = now()
 WHERE id = ANY(%s) AND status = 'scheduled'
"""


async def _pending_slot(conn: Conn, pair_key: str) -> tuple[datetime | None, list[int]]:
    """The pair's earliest scheduled slot and every scheduled send to supersede (locked)."""
    pending = await (await conn.execute(_PENDING, (pair_key,))).fetchall()
    if not pending:
        return None, []
    return pending[0]["slot_at"], [int(row["id"]) for row in pending]


async def _reserve_slot(conn: Conn, pair_key: str, spacing: float) -> datetime:
    """The pair's next free slot, ``spacing`` after the last one (the upsert's row lock
    serialises reservations fleet-wide)."""
    reserved = await (await conn.execute(_RESERVE, (pair_key, spacing))).fetchone()
    assert reserved is not None
    slot: datetime = reserved["last_slot"]
    return slot


@dataclass(frozen=True, slots=True)
class ScheduledSend:
    id: int
    slot_at: datetime
    status: str
    enqueued: bool
    created: bool
    superseded: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the send step should do now."""

    action: Literal["go", "wait", "done", "missing"]
    row: dict[str, Any] | None = None
    wait_seconds: float = 0.0


class SendLedger:
    """The ``onlyfans_sends`` and ``send_pairs`` rows; ``db`` is a ``Store`` or a ``Pool``."""

    def __init__(self, db: Connects) -> None:
        self._db = db

    async def schedule(
        self,
        *,
        key: str,
        workflow_id: str,
        campaign_id: str | None,
        user_id: str,
        recipient_id: str,
        pair_key: str,
        message: str,
        spacing: float,
        replace: bool,
    ) -> ScheduledSend:
        """Reserve the pair's next slot (or take over a pending one) and record the send."""
        async with self._db.connection() as conn, conn.transaction():
            found = await (await conn.execute(_BY_KEY, (key,))).fetchone()
            if found is not None:
                return ScheduledSend(
                    found["id"], found["slot_at"], found["status"], found["enqueued"], created=False
                )
            slot, superseded = await _pending_slot(conn, pair_key) if replace else (None, [])
            if slot is None:
                slot = await _reserve_slot(conn, pair_key, spacing)
            values = (key, workflow_id, campaign_id, user_id, recipient_id, pair_key, slot, message)
            row = await (await conn.execute(_INSERT_SEND, values)).fetchone()
            assert row is not None
            if superseded:
                await conn.execute(_SUPERSEDE, (row["id"], superseded))
            return ScheduledSend(int(row["id"]), slot, "scheduled", False, True, tuple(superseded))

    async def mark_enqueued(self, send_id: int) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE onlyfans_sends SET enqueued = true WHERE id = %s", (send_id,)
            )

    async def begin(self, send_id: int, spacing: float) -> Delivery:
        """Decide, under a row lock, whether this send may go to the gateway now."""
        async with self._db.connection() as conn, conn.transaction():
            row = await (
                await conn.execute(
                    "SELECT s.*,"
                    " GREATEST(0, EXTRACT(EPOCH FROM s.slot_at - now()))::float AS due_in"
                    " FROM onlyfans_sends s WHERE id = %s FOR UPDATE",
                    (send_id,),
                )
            ).fetchone()
            if row is None:
                return Delivery("missing")
            if row["status"] in ("sent", "superseded"):
                return Delivery("done", row)
            if row["due_in"] > EARLY_TOLERANCE:
                return Delivery("wait", row, float(row["due_in"]))
            wait = await self._acquire_pair(conn, row["pair_key"], send_id, spacing)
            if wait > 0:
                return Delivery("wait", row, wait)
            await conn.execute(
                "UPDATE onlyfans_sends SET status = 'sending', attempts = attempts + 1,"
                " updated_at = now() WHERE id = %s",
                (send_id,),
            )
            return Delivery("go", row)

    async def acquire_pair(self, pair_key: str, send_id: int, spacing: float) -> float:
        """Stamp a delivery attempt for the pair; 0 if allowed, else seconds to wait."""
        async with self._db.connection() as conn:
            return await self._acquire_pair(conn, pair_key, send_id, spacing)

    @staticmethod
    async def _acquire_pair(conn: Conn, pair_key: str, send_id: int, spacing: float) -> float:
        stamped = await (
            await conn.execute(
                "UPDATE send_pairs SET last_sent_at = clock_timestamp(), last_send_id = %(id)s"
                " WHERE pair_key = %(pair)s AND (last_sent_at IS NULL OR last_send_id = %(id)s"
                "   OR last_sent_at <= clock_timestamp() - make_interval(secs => %(spacing)s))"
                " RETURNING pair_key",
                {"id": send_id, "pair": pair_key, "spacing": spacing + GUARD_MARGIN},
            )
        ).fetchone()
        if stamped is not None:
            return 0.0
        left = await (
            await conn.execute(
                "SELECT GREATEST(0.05, EXTRACT(EPOCH FROM last_sent_at"
                " + make_interval(secs => %s) - clock_timestamp()))::float AS left"
                " FROM send_pairs WHERE pair_key = %s",
                (spacing + GUARD_MARGIN, pair_key),
            )
        ).fetchone()
        return float(left["left"]) if left else spacing

    async def finish(self, send_id: int, gateway_message_id: str) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE onlyfans_sends SET status = 'sent', gateway_message_id = %s,"
                " error_code = NULL, error_message = NULL, sent_at = now(), updated_at = now()"
                " WHERE id = %s",
                (gateway_message_id, send_id),
            )

    async def fail(self, send_id: int, code: str, message: str) -> None:
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE onlyfans_sends SET status = 'failed', error_code = %s,"
                " error_message = %s, updated_at = now() WHERE id = %s",
                (code, message[:1000], send_id),
            )

    async def note_error(self, send_id: int, code: str, message: str) -> None:
        """A retryable gateway failure: stays 'sending', the reason is kept."""
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE onlyfans_sends SET error_code = %s, error_message = %s,"
                " updated_at = now() WHERE id = %s",
                (code, message[:1000], send_id),
            )

    async def campaign_counts(self, campaign_id: str) -> dict[str, int]:
        async with self._db.connection() as conn:
            cur = await conn.execute(
                "SELECT status, count(*) AS n FROM onlyfans_sends WHERE campaign_id = %s"
                " GROUP BY status",
                (campaign_id,),
            )
            rows = await cur.fetchall()
        return {str(r["status"]): int(r["n"]) for r in rows}

    async def record_progress(self, campaign_id: str, recipients: int) -> None:
        """Idempotent progress on the campaign's workflow row (recounted, never added)."""
        async with self._db.connection() as conn:
            await conn.execute(
                "UPDATE workflows SET progress = jsonb_build_object("
                " 'recipients', %s::int,"
                " 'scheduled', (SELECT count(*) FROM onlyfans_sends WHERE campaign_id = %s)),"
                " updated_at = now() WHERE id = %s",
                (recipients, campaign_id, campaign_id),
            )
