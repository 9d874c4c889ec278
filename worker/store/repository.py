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

from worker.batcher import Batcher
from worker.errors import StoreUnavailable
from worker.store.group import ClaimAsk, Completion, claim_many, complete_many
from worker.store.records import CallRecord, Claim, DeadLetter, WorkflowRef
from worker.store.text import pg_json, pg_text

__all__ = ["Store"]

Row = dict[str, Any]
Conn = psycopg.AsyncConnection[Row]

_INSERT_CALL = """
INSERT INTO llm_calls (workflow_id, user_id, intent_type, provider, model, prompt_tokens,
                       completion_tokens, usage_source, cost_usd, price_version, duration_ms,
                       attempt, receive_count, cache_hit, outcome, error_code, trace_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
"""


class Store:
    """PostgreSQL access for the fleet. ``async with Store(url) as store``."""

    def __init__(self, database_url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self._url = database_url
        self._min = min_size
        self._max = max_size
        self._pool: AsyncConnectionPool[Conn] | None = None
        # group commit: at most two statements of each kind in flight, the rest wait and
        # travel together in the next one
        self._claims: Batcher[ClaimAsk, Claim] = Batcher(
            self._claim_batch, size=200, parallel=2, trace_name="postgres claim"
        )
        self._completions: Batcher[Completion, tuple[bool, bool]] = Batcher(
            self._complete_batch, size=200, parallel=2, trace_name="postgres complete"
        )

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
        await self._claims.drain()
        await self._completions.drain()
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
        """Take the workflow's lease, or say why not (done already, or held).
        Claims made at about the same time share one statement (group commit)."""
        result: Claim = await self._claims.submit(ClaimAsk(ref, owner, lease_seconds))
        return result

    async def _claim_batch(self, asks: list[ClaimAsk]) -> list[Claim | BaseException]:
        by_lease: dict[tuple[str, float], list[int]] = {}
        for i, ask in enumerate(asks):
            by_lease.setdefault((ask.owner, ask.lease_seconds), []).append(i)
        results: dict[int, Claim | BaseException] = {}
        async with self._conn() as conn:
            for indexes in by_lease.values():
                try:
                    claims: Sequence[Claim | BaseException] = await claim_many(
                        conn, [asks[i] for i in indexes]
                    )
                except psycopg.OperationalError:
                    raise
                except psycopg.Error:
                    if len(indexes) == 1:
                        raise
                    claims = [await self._claim_alone(conn, asks[i]) for i in indexes]
                results.update(zip(indexes, claims, strict=True))
        return [results[i] for i in range(len(asks))]

    @staticmethod
    async def _claim_alone(conn: Conn, ask: ClaimAsk) -> Claim | BaseException:
        """A batch the database refused: each claim on its own, so one bad row sinks only
        its own message (deferred; the redrive policy ends its retries)."""
        try:
            return (await claim_many(conn, [ask]))[0]
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            return StoreUnavailable(f"database error: {type(exc).__name__}: {exc}")

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

        Returns (completed now, cost rows written). Completions made at about the
        same time share one statement (group commit); if the database refuses it,
        each is written again with its cost rows in a savepoint, so that if only
        they fail the result still commits and the caller buffers them.
        """
        done: tuple[bool, bool] = await self._completions.submit(
            Completion(ref, result, provider, calls, receive_count)
        )
        return done

    async def _complete_batch(
        self, batch: list[Completion]
    ) -> list[tuple[bool, bool] | BaseException]:
        async with self._conn() as conn:
            try:
                flags = await complete_many(conn, batch)
                return [(flag, True) for flag in flags]
            except psycopg.OperationalError:
                raise
            except psycopg.Error:  # a row the database refused: each one the careful way
                pass
        results: list[tuple[bool, bool] | BaseException] = []
        for one in batch:
            try:
                results.append(await self._complete_carefully(one))
            except StoreUnavailable as exc:
                results.append(exc)
        return results

    async def _complete_carefully(self, one: Completion) -> tuple[bool, bool]:
        """The result in a transaction and the cost rows in a savepoint within it."""
        ref, result, provider = one.ref, one.result, one.provider
        async with self._conn() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE workflows SET status = 'completed', result = %s, provider = %s,"
                " error_code = NULL, error_message = NULL, lease_owner = NULL,"
                " lease_until = NULL, completed_at = now(), updated_at = now()"
                " WHERE id = %s AND status <> 'completed'",
                (Jsonb(pg_json(result)), provider, ref.id),
            )
            saved = await self._try_insert_calls(conn, ref, one.calls, one.receive_count)
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
