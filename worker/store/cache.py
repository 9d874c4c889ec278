"""The LLM response cache (``llm_cache``): answers kept for a while by request key."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from worker.store.pool import Connects

__all__ = ["CacheTable"]

_GET = "SELECT response FROM llm_cache WHERE key = %s AND expires_at > now()"

_PUT = """
INSERT INTO llm_cache (key, provider, model, response, expires_at)
VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))
ON CONFLICT (key) DO UPDATE SET response = EXCLUDED.response, expires_at = EXCLUDED.expires_at,
                                created_at = now()
"""


class CacheTable:
    def __init__(self, db: Connects) -> None:
        self._db = db

    async def get(self, key: str) -> dict[str, Any] | None:
        """The cached response for ``key``, unless it expired."""
        async with self._db.connection() as conn:
            row = await (await conn.execute(_GET, (key,))).fetchone()
        return dict(row["response"]) if row else None

    async def put(
        self, key: str, provider: str, response: dict[str, Any], ttl_seconds: float
    ) -> None:
        model = str(response.get("model", ""))
        async with self._db.connection() as conn:
            await conn.execute(_PUT, (key, provider, model, Jsonb(response), ttl_seconds))
