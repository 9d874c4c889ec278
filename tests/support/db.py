"""Reading the database in tests: any SQL, on a connection the store lends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, LiteralString

from worker.store import Connects, Row


async def query(
    db: Connects, sql: LiteralString, params: Sequence[Any] | dict[str, Any] = ()
) -> list[Row]:
    """The rows of ``sql`` (tests check what the fleet wrote; the fleet never does this)."""
    async with db.connection() as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchall() if cur.description else []
