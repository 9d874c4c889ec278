"""The store's public surface: error translation, connections, read models."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from worker.errors import StoreUnavailable
from worker.store import CallRecord, Replay, Store, WorkflowRef, record_replay
from worker.store.pool import map_errors, translate
from worker.store.reads import (
    call_history,
    completed_count,
    cost_breakdown,
    cost_totals,
    dead_letter_reasons,
    recent_activity,
    run_outcome,
    timings,
    workflow_counts,
    workflow_detail,
)


def test_psycopg_errors_translate_by_table() -> None:
    lost = translate(psycopg.OperationalError("server closed the connection"))
    assert isinstance(lost, StoreUnavailable) and "database unreachable" in str(lost)
    waited = translate(PoolTimeout("no connection in 5 s"), "claiming")
    assert isinstance(waited, StoreUnavailable)
    assert str(waited).startswith("claiming: database pool timeout")
    refused = translate(psycopg.errors.CheckViolation("bad row"))
    assert isinstance(refused, StoreUnavailable) and "database error" in str(refused)
    assert translate(ValueError("not the database's")) is None


def test_map_errors_chains_the_original_and_leaves_others_alone() -> None:
    original = psycopg.OperationalError("gone")
    with pytest.raises(StoreUnavailable) as raised, map_errors("migrating"):
        raise original
    assert raised.value.__cause__ is original
    with pytest.raises(KeyError), map_errors():
        raise KeyError("ours to see")


async def test_connection_of_a_closed_store_and_a_bad_query_raise_ours(migrated: str) -> None:
    store = Store(migrated)
    with pytest.raises(StoreUnavailable, match="not open"):
        async with store.connection():
            pass
    async with store:
        with pytest.raises(StoreUnavailable) as raised:
            async with store.connection() as conn:
                await conn.execute("SELECT * FROM no_such_table")
        assert isinstance(raised.value.__cause__, psycopg.errors.UndefinedTable)
        await store.ping()  # the pool survived


def _call(usd: str, *, cache_hit: bool = False) -> CallRecord:
    return CallRecord(
        "openai", "gpt-4o-mini", 10, 20, "api", Decimal(usd), "v", 7, 1, "ok", cache_hit=cache_hit
    )


async def _complete(store: Store, user: str, calls: list[CallRecord]) -> WorkflowRef:
    ref = WorkflowRef(str(uuid.uuid4()), "message_generation", user, "normal", "t-read")
    assert (await store.claim(ref, "reader", 30)).outcome == "claimed"
    assert await store.complete(ref, "reader", {"ok": True}, "openai", calls, 1) == (True, True)
    return ref


async def test_cost_read_models(store: Store) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    user = f"u-cost-{uuid.uuid4().hex[:6]}"
    await _complete(store, user, [_call("0.25"), _call("0.5", cache_hit=True)])
    await _complete(store, user, [_call("1")])

    totals = await cost_totals(store, since, user)
    assert (totals.calls, totals.cache_hits, totals.usd) == (3, 1, Decimal("1.75"))
    assert (await cost_totals(store, since)).calls >= 3  # everyone's

    by_user = await cost_breakdown(store, since, ["user", "provider"], user=user)
    assert [(r["user"], r["provider"], r["calls"], r["tokens"]) for r in by_user] == [
        (user, "openai", 3, 90)
    ]
    (day,) = await cost_breakdown(store, since, ["day"], user=user)
    assert str(day["day"]) == datetime.now(UTC).date().isoformat()
    with pytest.raises(ValueError, match="group by"):
        await cost_breakdown(store, since, ["user; DROP TABLE llm_calls"])


async def test_status_live_and_run_read_models(store: Store) -> None:
    since = datetime.now(UTC) - timedelta(seconds=5)
    user = f"u-read-{uuid.uuid4().hex[:6]}"
    done = await _complete(store, user, [_call("0.125")])
    waiting = WorkflowRef(str(uuid.uuid4()), "content_planning", user, "normal", "t-read")
    await store.claim(waiting, "reader", 30)

    assert (await workflow_counts(store)).get("completed", 0) >= 1
    detail = await workflow_detail(store, done.id)
    assert detail is not None and detail.row["user_id"] == user
    assert (detail.llm_calls, detail.cost_usd, detail.sends) == (1, Decimal("0.125"), {})
    assert await workflow_detail(store, str(uuid.uuid4())) is None

    activity = await recent_activity(store)
    assert activity.completed >= 1 and activity.cost_usd >= Decimal("0.125")
    assert set(activity.latency) == {"p50", "p95", "p99"}

    outcome = await run_outcome(store, since, leave_out=["content_planning"])
    assert outcome.statuses.get("completed", 0) >= 1
    assert await completed_count(store, [done.id, waiting.id]) == 1
    (timing,) = await timings(store, [done.id, waiting.id])  # only the completed one
    assert timing.id == done.id and timing.inside >= 0 and timing.llm == pytest.approx(0.007)


async def test_dlq_read_models_and_replay_audit(store: Store) -> None:
    ref = await _complete(store, "u-dlq-read", [_call("0.01")])
    history = await call_history(store, ref.id)
    assert [(r["provider"], r["duration_ms"]) for r in history] == [("openai", 7)]
    assert await dead_letter_reasons(store, [str(uuid.uuid4())]) == {}
    dlq_id = f"dlq-{uuid.uuid4()}"
    await record_replay(store, Replay(dlq_id, "m-1", "copy", "m-2", ref.id, replay_count=2))
    async with store.connection() as conn:
        cur = await conn.execute("SELECT * FROM replays WHERE dlq_message_id = %s", (dlq_id,))
        (row,) = await cur.fetchall()
    assert (row["new_message_id"], row["workflow_id"], row["replay_count"]) == ("m-2", ref.id, 2)


async def test_results_with_hostile_text_are_stored_cleaned(store: Store) -> None:
    """A result carrying NUL bytes and a lone surrogate (jsonb refuses both) is stored
    cleaned; an ordinary one keeps its non-ASCII text as it was."""
    plain = {"text": "caf\u00e9 \U0001f600", "n": [1, 2.5, None, True]}
    hostile = {"text": "a\x00b", "bad\ud800key": ["x\udfffy"], "ok": "caf\u00e9"}
    numbered = {"votes": {7: "seven"}}  # a key that is not a string: JSON's text of it
    stored = []
    for result in (plain, hostile, numbered):
        ref = WorkflowRef(str(uuid.uuid4()), "message_generation", "u-text", "normal", "t-text")
        assert (await store.claim(ref, "texter", 30)).outcome == "claimed"
        assert await store.complete(ref, "texter", result, "openai", [_call("0.1")], 1) == (
            True,
            True,
        )
        row = await store.workflow(ref.id)
        assert row is not None and row["status"] == "completed"
        stored.append(row["result"])
    assert stored[0] == plain
    assert stored[1] == {"text": "a\\0b", "bad?key": ["x?y"], "ok": "caf\u00e9"}
    assert stored[2] == {"votes": {"7": "seven"}}
