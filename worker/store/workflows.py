"""The workflow ledger: claim, lease, complete, fail, release, dead letters.

Claims and completions go through group commit (``group.py``): those made at
about the same time share one statement. If the database refuses a batch
(one bad row), its entries are retried one by one, so a bad row sinks only its
own message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from worker.batcher import Batcher
from worker.errors import StoreUnavailable, WorkerError
from worker.store.group import ClaimAsk, Completion, claim_many, complete_many
from worker.store.ledger import insert_calls, insert_dead_letter, try_insert_calls
from worker.store.pool import Conn, Connects, Row, translate
from worker.store.records import CallRecord, Claim, DeadLetter, WorkflowRef
from worker.store.text import pg_jsonb, pg_text

__all__ = ["Workflows"]

_EXTEND = """
UPDATE workflows SET lease_until = now() + make_interval(secs => %s)
 WHERE id = ANY(%s) AND lease_owner = %s AND status = 'running'
"""

_COMPLETE_ONE = """
UPDATE workflows SET status = 'completed', result = %s, provider = %s, error_code = NULL,
       error_message = NULL, lease_owner = NULL, lease_until = NULL, completed_at = now(),
       updated_at = now()
 WHERE id = %s AND status <> 'completed'
"""

_FAIL = """
UPDATE workflows SET status = %s, error_code = %s, error_message = %s, lease_owner = NULL,
       lease_until = NULL, updated_at = now()
 WHERE id = %s AND status <> 'completed' AND lease_owner = %s
"""

_RELEASE = """
UPDATE workflows SET status = %s, lease_owner = NULL, lease_until = NULL, updated_at = now()
 WHERE id = %s AND lease_owner = %s AND status = 'running'
"""


def _database_error(exc: psycopg.Error) -> WorkerError:
    ours = translate(exc)
    assert ours is not None  # every psycopg.Error has a row in ERRORS
    return ours


class Workflows:
    """The ``workflows`` rows and what is written with them (cost rows, dead letters)."""

    def __init__(self, db: Connects) -> None:
        self._db = db
        # group commit: at most two statements of each kind in flight, the rest wait and
        # travel together in the next one
        self._claims: Batcher[ClaimAsk, Claim] = Batcher(
            self._claim_batch, size=200, parallel=2, trace_name="postgres claim"
        )
        self._completions: Batcher[Completion, tuple[bool, bool]] = Batcher(
            self._complete_batch, size=200, parallel=2, trace_name="postgres complete"
        )

    async def drain(self) -> None:
        """Let the batches in flight finish (before the pool closes)."""
        await self._claims.drain()
        await self._completions.drain()

    async def get(self, workflow_id: str) -> Row | None:
        async with self._db.connection() as conn:
            cur = await conn.execute("SELECT * FROM workflows WHERE id = %s", (workflow_id,))
            return await cur.fetchone()

    async def claim(self, ref: WorkflowRef, owner: str, lease_seconds: float) -> Claim:
        """Take the workflow's lease, or say why not (done already, or held)."""
        result: Claim = await self._claims.submit(ClaimAsk(ref, owner, lease_seconds))
        return result

    async def _claim_batch(self, asks: list[ClaimAsk]) -> list[Claim | BaseException]:
        by_lease: dict[tuple[str, float], list[int]] = {}
        for i, ask in enumerate(asks):
            by_lease.setdefault((ask.owner, ask.lease_seconds), []).append(i)
        results: dict[int, Claim | BaseException] = {}
        async with self._db.connection() as conn:
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
        """One claim of a refused batch: its own failure is deferred (the redrive policy
        ends its retries)."""
        try:
            return (await claim_many(conn, [ask]))[0]
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            return _database_error(exc)

    async def extend_leases(self, ids: Sequence[str], owner: str, lease_seconds: float) -> None:
        if not ids:
            return
        async with self._db.connection() as conn:
            await conn.execute(_EXTEND, (lease_seconds, list(ids), owner))

    async def complete(
        self,
        ref: WorkflowRef,
        result: dict[str, Any],
        provider: str | None,
        calls: Sequence[CallRecord],
        receive_count: int,
    ) -> tuple[bool, bool]:
        """Result, cost rows and status in one transaction: (completed now, cost rows
        written). If the database refuses the shared statement, each completion is
        written again with its cost rows in a savepoint, so that if only they fail the
        result still commits and the caller buffers them."""
        done: tuple[bool, bool] = await self._completions.submit(
            Completion(ref, result, provider, calls, receive_count)
        )
        return done

    async def _complete_batch(
        self, batch: list[Completion]
    ) -> list[tuple[bool, bool] | BaseException]:
        async with self._db.connection() as conn:
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
        async with self._db.connection() as conn, conn.transaction():
            cur = await conn.execute(
                _COMPLETE_ONE, (pg_jsonb(one.result), one.provider, one.ref.id)
            )
            saved = await try_insert_calls(conn, one.ref, one.calls, one.receive_count)
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
        code, message = pg_text(error_code, 200), pg_text(error_message, 2000)
        async with self._db.connection() as conn, conn.transaction():
            await conn.execute(_FAIL, (status, code, message, ref.id, owner))
            if dead_letter is not None:
                await insert_dead_letter(conn, dead_letter)
            return await try_insert_calls(conn, ref, calls, receive_count)

    async def release(self, ref: WorkflowRef, owner: str, status: str = "retrying") -> None:
        """Give the lease back: shutdown overtook the work ('retrying'), or it is due
        later ('waiting')."""
        async with self._db.connection() as conn:
            await conn.execute(_RELEASE, (status, ref.id, owner))

    async def add_dead_letter(self, dead_letter: DeadLetter) -> None:
        """Record why a message leaves (malformed bodies have no workflow row)."""
        async with self._db.connection() as conn:
            await insert_dead_letter(conn, dead_letter)

    async def insert_calls(
        self, ref: WorkflowRef, calls: Sequence[CallRecord], receive_count: int
    ) -> None:
        """Cost rows on their own (the buffer's retry path, cache hits)."""
        async with self._db.connection() as conn, conn.transaction():
            await insert_calls(conn, ref, calls, receive_count)
