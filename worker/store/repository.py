"""The store: a psycopg 3 async pool and the queries the fleet runs.

psycopg errors stop here and become ``StoreUnavailable`` (retryable): the
consumer never acknowledges a message whose result is not durable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from worker.errors import StoreUnavailable
from worker.store.records import CallRecord, Claim, DeadLetter, WorkflowRef

__all__ = ["Store", "pg_json", "pg_text"]

Row = dict[str, Any]
Conn = psycopg.AsyncConnection[Row]

_CLAIM = """
INSERT INTO workflows AS w (id, type, user_id, status, priority, attempts, trace_id,
                            lease_owner, lease_until, parent_id)
VALUES (%(id)s, %(type)s, %(user_id)s, 'running', %(priority)s, 1, %(trace_id)s,
        %(owner)s, now() + make_interval(secs => %(lease)s), %(parent_id)s)
ON CONFLICT (id) DO UPDATE
   SET status = 'running', attempts = w.attempts + 1, lease_owner = EXCLUDED.lease_owner,
       lease_until = EXCLUDED.lease_until, updated_at = now()
 WHERE w.status <> 'completed' AND (w.lease_until IS NULL OR w.lease_until < now())
RETURNING attempts
"""

_INSERT_CALL = """
INSERT INTO llm_calls (workflow_id, user_id, intent_type, provider, model, prompt_tokens,
                       completion_tokens, usage_source, cost_usd, price_version, duration_ms,
                       attempt, receive_count, cache_hit, outcome, error_code, trace_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""

_CALL_COLUMNS = """provider text, model text, prompt_tokens integer, completion_tokens integer,
    usage_source text, cost_usd numeric, price_version text, duration_ms integer,
    attempt integer, cache_hit boolean, outcome text, error_code text"""

# The hot path: status, result and every cost row in one statement (one round trip).
_COMPLETE = f"""
WITH done AS (
    UPDATE workflows SET status = 'completed', result = %(result)s, provider = %(provider)s,
           error_code = NULL, error_message = NULL, lease_owner = NULL, lease_until = NULL,
           completed_at = now(), updated_at = now()
     WHERE id = %(id)s AND status <> 'completed'
    RETURNING 1
), costs AS (
    INSERT INTO llm_calls (workflow_id, user_id, intent_type, provider, model, prompt_tokens,
                           completion_tokens, usage_source, cost_usd, price_version, duration_ms,
                           attempt, receive_count, cache_hit, outcome, error_code, trace_id)
    SELECT %(id)s, %(user_id)s, %(type)s, c.provider, c.model, c.prompt_tokens,
           c.completion_tokens, c.usage_source, c.cost_usd, c.price_version, c.duration_ms,
           c.attempt, %(receive_count)s, c.cache_hit, c.outcome, c.error_code, %(trace_id)s
      FROM jsonb_to_recordset(%(calls)s) AS c({_CALL_COLUMNS})
    RETURNING 1
)
SELECT (SELECT count(*) FROM done) AS completed
"""


def _call_json(call: CallRecord) -> dict[str, Any]:
    return {
        "provider": call.provider,
        "model": call.model,
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "usage_source": call.usage_source,
        "cost_usd": str(call.cost_usd),
        "price_version": call.price_version,
        "duration_ms": call.duration_ms,
        "attempt": call.attempt,
        "cache_hit": call.cache_hit,
        "outcome": call.outcome,
        "error_code": call.error_code,
    }


def pg_text(value: str, limit: int | None = None) -> str:
    """Text PostgreSQL accepts: no NUL bytes, no lone surrogates (hostile input has both)."""
    text = value.replace("\x00", "\\0").encode("utf-8", "replace").decode("utf-8")
    return text[:limit] if limit else text


def pg_json(value: Any) -> Any:
    """The same cleaning through a JSON value (jsonb rejects \\u0000 too)."""
    if isinstance(value, str):
        return pg_text(value)
    if isinstance(value, dict):
        return {pg_text(str(k)): pg_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [pg_json(v) for v in value]
    return value


class Store:
    """PostgreSQL access for the fleet. ``async with Store(url) as store``."""

    def __init__(self, database_url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self._url = database_url
        self._min = min_size
        self._max = max_size
        self._pool: AsyncConnectionPool[Conn] | None = None

    async def open(self, wait_seconds: float = 10.0) -> None:
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self._url,
            min_size=self._min,
            max_size=self._max,
            open=False,
            kwargs={"row_factory": dict_row, "autocommit": True},
            connection_class=psycopg.AsyncConnection[Row],
        )
        try:
            await pool.open(wait=True, timeout=wait_seconds)
        except (psycopg.Error, Exception) as exc:
            await pool.close()
            raise StoreUnavailable(f"cannot open the database pool: {exc}") from exc
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[Conn]:
        if self._pool is None:
            raise StoreUnavailable("store is not open")
        try:
            async with self._pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise StoreUnavailable(f"database error: {type(exc).__name__}: {exc}") from exc
        except TimeoutError as exc:  # psycopg_pool.PoolTimeout subclasses it
            raise StoreUnavailable(f"database pool timeout: {exc}") from exc

    async def ping(self) -> None:
        async with self._conn() as conn:
            await conn.execute("SELECT 1")

    # --- workflow lifecycle ----------------------------------------------
    async def claim(self, ref: WorkflowRef, owner: str, lease_seconds: float) -> Claim:
        """Take the workflow's lease, or say why not (done already, or held)."""
        params = {
            "id": ref.id,
            "type": ref.type,
            "user_id": ref.user_id,
            "priority": ref.priority,
            "trace_id": ref.trace_id,
            "owner": owner,
            "lease": lease_seconds,
            "parent_id": ref.parent_id,
        }
        async with self._conn() as conn:
            row = await (await conn.execute(_CLAIM, params)).fetchone()
            if row is not None:
                return Claim("claimed", attempts=int(row["attempts"]))
            cur = await conn.execute(
                "SELECT status, attempts, GREATEST(0, EXTRACT(EPOCH FROM lease_until - now()))"
                " AS left FROM workflows WHERE id = %s",
                (ref.id,),
            )
            row = await cur.fetchone()
        if row is None:  # deleted between the two statements: let SQS bring it back
            return Claim("held", seconds_left=1.0)
        if row["status"] == "completed":
            return Claim("completed", attempts=int(row["attempts"]))
        return Claim("held", attempts=int(row["attempts"]), seconds_left=float(row["left"] or 0))

    async def extend_leases(self, ids: Sequence[str], owner: str, lease_seconds: float) -> None:
        if not ids:
            return
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE workflows SET lease_until = now() + make_interval(secs => %s)"
                " WHERE id = ANY(%s) AND lease_owner = %s AND status = 'running'",
                (lease_seconds, list(ids), owner),
            )

    async def complete(
        self,
        ref: WorkflowRef,
        owner: str,
        result: dict[str, Any],
        provider: str | None,
        calls: Sequence[CallRecord],
        receive_count: int,
    ) -> tuple[bool, bool]:
        """Result, cost rows and status in one transaction.

        Returns (completed now, cost rows written). One statement (one round trip)
        does it all; if the database refuses it, the result is written again with
        the cost rows in a savepoint, so that if only they fail the result still
        commits and the caller buffers them.
        """
        async with self._conn() as conn:
            try:
                cur = await conn.execute(
                    _COMPLETE,
                    {
                        "id": ref.id,
                        "user_id": ref.user_id,
                        "type": ref.type,
                        "trace_id": ref.trace_id,
                        "receive_count": receive_count,
                        "result": Jsonb(pg_json(result)),
                        "provider": provider,
                        "calls": Jsonb(pg_json([_call_json(c) for c in calls])),
                    },
                )
                row = await cur.fetchone()
                return bool(row and row["completed"]), True
            except psycopg.OperationalError:
                raise
            except psycopg.Error:  # a cost row the database refused: the careful way below
                pass
        async with self._conn() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE workflows SET status = 'completed', result = %s, provider = %s,"
                " error_code = NULL, error_message = NULL, lease_owner = NULL,"
                " lease_until = NULL, completed_at = now(), updated_at = now()"
                " WHERE id = %s AND status <> 'completed'",
                (Jsonb(pg_json(result)), provider, ref.id),
            )
            saved = await self._try_insert_calls(conn, ref, calls, receive_count)
            return cur.rowcount == 1, saved

    async def record_failure(
        self,
        ref: WorkflowRef,
        owner: str,
        *,
        status: str,
        error_code: str,
        error_message: str,
        calls: Sequence[CallRecord],
        receive_count: int,
        dead_letter: DeadLetter | None = None,
    ) -> bool:
        """A failed attempt: status, maybe a DLQ row; returns whether cost rows were written."""
        async with self._conn() as conn, conn.transaction():
            await conn.execute(
                "UPDATE workflows SET status = %s, error_code = %s, error_message = %s,"
                " lease_owner = NULL, lease_until = NULL, updated_at = now()"
                " WHERE id = %s AND status <> 'completed' AND lease_owner = %s",
                (status, pg_text(error_code, 200), pg_text(error_message, 2000), ref.id, owner),
            )
            if dead_letter is not None:
                await self._insert_dead_letter(conn, dead_letter)
            return await self._try_insert_calls(conn, ref, calls, receive_count)

    async def _try_insert_calls(
        self, conn: Conn, ref: WorkflowRef, calls: Sequence[CallRecord], receive_count: int
    ) -> bool:
        try:
            async with conn.transaction():
                await self._insert_calls(conn, ref, calls, receive_count)
        except psycopg.OperationalError:
            raise
        except psycopg.Error:
            return False
        return True

    async def release(self, ref: WorkflowRef, owner: str, status: str = "retrying") -> None:
        """Give the lease back: shutdown overtook the work ('retrying'), or it is due
        later ('waiting')."""
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE workflows SET status = %s, lease_owner = NULL,"
                " lease_until = NULL, updated_at = now()"
                " WHERE id = %s AND lease_owner = %s AND status = 'running'",
                (status, ref.id, owner),
            )

    async def add_dead_letter(self, dead_letter: DeadLetter) -> None:
        """Record why a message leaves (malformed bodies have no workflow row)."""
        async with self._conn() as conn:
            await self._insert_dead_letter(conn, dead_letter)

    @staticmethod
    async def _insert_calls(
        conn: Conn, ref: WorkflowRef, calls: Sequence[CallRecord], receive_count: int
    ) -> None:
        if not calls:
            return
        async with conn.cursor() as cur:
            await cur.executemany(
                _INSERT_CALL,
                [
                    (
                        ref.id,
                        ref.user_id,
                        ref.type,
                        c.provider,
                        c.model,
                        c.prompt_tokens,
                        c.completion_tokens,
                        c.usage_source,
                        c.cost_usd,
                        c.price_version,
                        c.duration_ms,
                        c.attempt,
                        receive_count,
                        c.cache_hit,
                        c.outcome,
                        c.error_code,
                        ref.trace_id,
                    )
                    for c in calls
                ],
            )

    @staticmethod
    async def _insert_dead_letter(conn: Conn, dl: DeadLetter) -> None:
        wf = dl.workflow
        await conn.execute(
            "INSERT INTO dead_letters (message_id, workflow_id, intent_type, user_id,"
            " error_class, error_code, error_message, receive_count, history, source_queue)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                dl.message_id,
                wf.id if wf else None,
                wf.type if wf else None,
                wf.user_id if wf else None,
                dl.error_class,
                dl.error_code,
                pg_text(dl.error_message, 2000),
                dl.receive_count,
                Jsonb(pg_json(dl.history)),
                dl.source_queue,
            ),
        )

    # --- reads for operators ---------------------------------------------
    async def fetch(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        async with self._conn() as conn:
            cur = await conn.execute(sql.encode(), params)
            return await cur.fetchall()

    async def cached_response(self, key: str) -> dict[str, Any] | None:
        rows = await self.fetch(
            "SELECT response FROM llm_cache WHERE key = %s AND expires_at > now()", (key,)
        )
        return dict(rows[0]["response"]) if rows else None

    async def cache_response(
        self, key: str, provider: str, response: dict[str, Any], ttl_seconds: float
    ) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO llm_cache (key, provider, model, response, expires_at)"
                " VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s))"
                " ON CONFLICT (key) DO UPDATE SET response = EXCLUDED.response,"
                " expires_at = EXCLUDED.expires_at, created_at = now()",
                (key, provider, str(response.get("model", "")), Jsonb(response), ttl_seconds),
            )

    async def insert_calls(
        self, ref: WorkflowRef, calls: Sequence[CallRecord], receive_count: int
    ) -> None:
        """Cost rows on their own (the buffer's retry path, cache hits)."""
        async with self._conn() as conn, conn.transaction():
            await self._insert_calls(conn, ref, calls, receive_count)

    async def worker_seen(self, worker_id: str, host: str, pid: int, in_flight: int) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO workers (id, host, pid, in_flight) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET last_seen = now(), in_flight = EXCLUDED.in_flight",
                (worker_id, host, pid, in_flight),
            )

    async def worker_gone(self, worker_id: str) -> None:
        async with self._conn() as conn:
            await conn.execute("DELETE FROM workers WHERE id = %s", (worker_id,))

    async def live_workers(self, within_seconds: float = 60.0) -> int:
        rows = await self.fetch(
            "SELECT count(*) AS n FROM workers WHERE last_seen > now() - make_interval(secs => %s)",
            (within_seconds,),
        )
        return int(rows[0]["n"])

    async def workflow(self, workflow_id: str) -> Row | None:
        rows = await self.fetch("SELECT * FROM workflows WHERE id = %s", (workflow_id,))
        return rows[0] if rows else None

    async def status_counts(self) -> dict[str, int]:
        rows = await self.fetch("SELECT status, count(*) AS n FROM workflows GROUP BY status")
        return {str(r["status"]): int(r["n"]) for r in rows}

    async def cost_since(self, since: datetime) -> list[Row]:
        return await self.fetch(
            "SELECT provider, intent_type, count(*) AS calls,"
            " sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,"
            " sum(cost_usd) AS cost_usd FROM llm_calls WHERE created_at >= %s"
            " GROUP BY provider, intent_type ORDER BY provider, intent_type",
            (since,),
        )

    async def dead_letters_since(self, since: datetime) -> list[Row]:
        return await self.fetch(
            "SELECT message_id, workflow_id, intent_type, error_class, error_code,"
            " error_message, receive_count, created_at FROM dead_letters"
            " WHERE created_at >= %s ORDER BY id",
            (since,),
        )
