"""The console's sign-in state in PostgreSQL (migration 0011): sessions and failed
sign-ins, so that a restart or a second console process keeps people signed in and
the sign-in limit holds across processes.

A session row is keyed by the SHA-256 of its cookie (the cookie is never stored) and
carries who, the role, the CSRF token and when it expires; the database's clock decides
expiry. A failed sign-in row holds the client address and the time, never the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from worker.store.pool import Connects

__all__ = [
    "SessionRow",
    "close_session",
    "find_session",
    "open_session",
    "sign_in_attempt",
    "sign_in_succeeded",
]

_OPEN = """
WITH expired AS (DELETE FROM console_sessions WHERE expires_at <= now())
INSERT INTO console_sessions (cookie_hash, name, role, token_tag, csrf, expires_at)
VALUES (%(hash)s, %(name)s, %(role)s, %(tag)s, %(csrf)s,
        now() + make_interval(secs => %(lifetime)s))
RETURNING expires_at
"""

# an expired session is deleted as it is refused
_FIND = """
WITH expired AS (
    DELETE FROM console_sessions WHERE cookie_hash = %(hash)s AND expires_at <= now()
)
SELECT name, role, token_tag, csrf, expires_at FROM console_sessions
 WHERE cookie_hash = %(hash)s AND expires_at > now()
"""

# the two-key advisory lock space of console sign-ins ("cons"), then one key per address
_LOCK_SPACE = 0x636F6E73
_LOCK = "SELECT pg_advisory_xact_lock(%(space)s, hashtext(%(remote)s))"

_FAILED = """
WITH aged AS (
    DELETE FROM console_sign_in_failures WHERE at < now() - make_interval(secs => %(window)s)
)
INSERT INTO console_sign_in_failures (remote) VALUES (%(remote)s)
"""

# how many failures in the window, and in how many seconds the oldest of them leaves it
_FAILURES = """
SELECT count(*) AS n,
       coalesce(EXTRACT(EPOCH FROM min(at) + make_interval(secs => %(window)s) - now()), 0)
           ::float8 AS clears_in
  FROM console_sign_in_failures
 WHERE remote = %(remote)s AND at >= now() - make_interval(secs => %(window)s)
"""


@dataclass(frozen=True, slots=True)
class SessionRow:
    name: str
    role: str
    token_tag: str
    csrf: str
    expires_at: datetime


async def open_session(
    db: Connects, cookie_hash: str, session: SessionRow, lifetime_seconds: float
) -> datetime:
    """Record ``session`` (its ``expires_at`` is ignored: it expires ``lifetime_seconds``
    from the database's now, which is returned) and clear expired ones."""
    params = {"hash": cookie_hash, "name": session.name, "role": session.role,
              "tag": session.token_tag, "csrf": session.csrf, "lifetime": lifetime_seconds}
    async with db.connection() as conn:
        row = await (await conn.execute(_OPEN, params)).fetchone()
    assert row is not None  # RETURNING of one inserted row
    expires: datetime = row["expires_at"]
    return expires


async def find_session(db: Connects, cookie_hash: str) -> SessionRow | None:
    """The live session with this cookie hash (None if unknown or expired)."""
    async with db.connection() as conn:
        row = await (await conn.execute(_FIND, {"hash": cookie_hash})).fetchone()
    if row is None:
        return None
    return SessionRow(
        row["name"], row["role"], row["token_tag"], row["csrf"], row["expires_at"]
    )


async def close_session(db: Connects, cookie_hash: str) -> None:
    async with db.connection() as conn:
        await conn.execute("DELETE FROM console_sessions WHERE cookie_hash = %s", (cookie_hash,))


async def sign_in_attempt(
    db: Connects, remote: str, window_seconds: float, limit: int
) -> tuple[int, float]:
    """Admit one sign-in attempt from ``remote``, counted as a failure straight away (a
    good sign-in takes it back: ``sign_in_succeeded``), under a lock per address, so a
    burst of concurrent guesses cannot slip past the limit. Returns the failures within
    the window before this attempt and the seconds until the oldest of them no longer
    counts; at ``limit`` failures nothing is recorded (the caller refuses)."""
    params = {"remote": remote, "window": window_seconds, "space": _LOCK_SPACE}
    async with db.connection() as conn, conn.transaction():
        await conn.execute(_LOCK, params)
        row = await (await conn.execute(_FAILURES, params)).fetchone()
        assert row is not None  # an aggregate always answers
        failures = int(row["n"])
        if failures < limit:
            await conn.execute(_FAILED, params)
    return failures, max(0.0, float(row["clears_in"]))


async def sign_in_succeeded(db: Connects, remote: str) -> None:
    """A good sign-in takes back its own attempt and forgets the address's mistakes."""
    async with db.connection() as conn:
        await conn.execute("DELETE FROM console_sign_in_failures WHERE remote = %s", (remote,))
