"""Plain SQL migrations, applied in name order and tracked in schema_migrations.

An advisory lock makes concurrent ``fleet migrate`` runs (or workers started
with FLEET_MIGRATE_ON_START) safe: one applies, the others wait and find
nothing left to do.
"""

from __future__ import annotations

from importlib import resources

import psycopg

from worker.store.pool import map_errors

__all__ = ["available_migrations", "migrate"]

_LOCK_KEY = 0x466C656574  # "Fleet"


def available_migrations() -> list[tuple[str, str]]:
    """(version, sql) pairs shipped in the package, in order."""
    folder = resources.files("worker.store") / "migrations"
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [(entry.name.removesuffix(".sql"), entry.read_text()) for entry in files]


async def migrate(database_url: str) -> list[str]:
    """Apply pending migrations; return the versions applied now."""
    with map_errors("cannot migrate"):
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
            try:
                return await _apply_pending(conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


async def _apply_pending(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> list[str]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    cursor = await conn.execute("SELECT version FROM schema_migrations")
    done = {str(row[0]) for row in await cursor.fetchall()}
    applied = []
    for version, sql in available_migrations():
        if version in done:
            continue
        async with conn.transaction():
            await conn.execute(sql.encode())
            await conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
        applied.append(version)
    return applied
