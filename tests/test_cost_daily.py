"""The cost rollups (cost_daily of migration 0011, cost_monthly and cost_day_mix of 0016)
equal the sum of llm_calls: after a real run through the worker, after the migrations'
backfills of existing rows, after an update and a delete; and a cost window read from
them (whole months and days) plus llm_calls (the ragged edges) equals the same window
summed from llm_calls alone, within a day, a month or across several."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import psycopg
import pytest

from devstack import scratch_database
from tests.support import Factory, drain, envelope, query, send_bodies
from worker.store import Store, available_migrations, migrate
from worker.store.reads import cost_breakdown, cost_page, cost_per_day, cost_totals

# rows of the symmetric difference between a rollup and llm_calls grouped the same way
DIFFERENCE = """
WITH raw AS (
    SELECT {keys}, count(*)::bigint AS calls,
           count(*) FILTER (WHERE cache_hit)::bigint AS cache_hits,
           sum(prompt_tokens)::bigint AS prompt_tokens,
           sum(completion_tokens)::bigint AS completion_tokens, sum(cost_usd) AS cost_usd
      FROM llm_calls GROUP BY {positions}
), rolled AS (
    SELECT {columns}, calls, cache_hits, prompt_tokens, completion_tokens, cost_usd
      FROM {table}
)
SELECT count(*) AS n FROM (
    (TABLE raw EXCEPT ALL TABLE rolled) UNION ALL (TABLE rolled EXCEPT ALL TABLE raw)
) AS d
"""
DAY = "(created_at AT TIME ZONE 'UTC')::date"
MONTH = "date_trunc('month', created_at AT TIME ZONE 'UTC')::date"
# each rollup: its table, its key columns, the same keys computed from llm_calls
ROLLUPS = [
    ("cost_daily", "day, user_id, provider, model, intent_type",
     f"{DAY}, user_id, provider, model, intent_type"),
    ("cost_monthly", "month, user_id, provider, model, intent_type",
     f"{MONTH}, user_id, provider, model, intent_type"),
    ("cost_day_mix", "day, provider, model, intent_type", f"{DAY}, provider, model, intent_type"),
]

# An open window has no end: it counts calls stamped later today too (other tests' rows)
OPEN_END = datetime(9999, 1, 1, tzinfo=UTC)

INSERT_CALLS = """
INSERT INTO llm_calls (workflow_id, user_id, intent_type, provider, model, prompt_tokens,
                       completion_tokens, usage_source, cost_usd, price_version, duration_ms,
                       attempt, outcome, cache_hit, created_at)
SELECT 'wf-' || g, %(user)s, (ARRAY['message_generation', 'content_planning'])[1 + g %% 2],
       (ARRAY['openai', 'azure', 'openai'])[1 + g %% 3], 'gpt-4o-mini', 10 + g, 3 + g %% 7,
       'api', (g * 0.00000123)::numeric(14, 8), 'v', 5, 1, 'ok', g %% 5 = 0,
       %(start)s + make_interval(mins => g * 37)
  FROM generate_series(1, %(n)s) AS g
"""


async def difference(db: Store) -> int:
    """Rows on which any of the three rollups differs from llm_calls (0: all exact)."""
    total = 0
    for table, columns, keys in ROLLUPS:
        positions = ", ".join(str(i + 1) for i in range(columns.count(",") + 1))
        (row,) = await query(db, DIFFERENCE.format(
            table=table, columns=columns, keys=keys, positions=positions
        ))
        total += int(row["n"])
    return total


async def test_the_rollup_equals_llm_calls_after_a_worker_run(
    make_settings: Factory, store: Store
) -> None:
    settings = await make_settings(cache_ttl=60)
    user = f"u-roll-{uuid.uuid4().hex[:6]}"
    bodies = [
        envelope({"type": "message_generation", "userId": user, "data": {"context": f"c{i % 4}"}})
        for i in range(24)  # repeated contexts: cache hits are cost rows too
    ] + [
        envelope({"type": "content_planning", "userId": user, "data": {"goal": "g"}}),
        envelope({"type": "message_generation", "userId": user, "forceProvider": "azure",
                  "data": {"context": "no azure configured: it fails"}}),
    ]
    await send_bodies(settings, list(bodies))
    await drain(settings)
    (written,) = await query(store,
        "SELECT count(*) AS calls, sum(cost_usd) AS usd FROM llm_calls WHERE user_id = %s",
        (user,),
    )
    assert written["calls"] >= 25 and written["usd"] > 0
    (rolled,) = await query(store,
        "SELECT sum(calls) AS calls, sum(cost_usd) AS usd FROM cost_daily WHERE user_id = %s",
        (user,),
    )
    assert (rolled["calls"], rolled["usd"]) == (written["calls"], written["usd"])
    assert await difference(store) == 0  # every row of every test so far, too


async def test_updates_and_deletes_keep_the_rollup_exact(store: Store) -> None:
    user = f"u-edit-{uuid.uuid4().hex[:6]}"
    start = datetime.now(UTC) - timedelta(days=3)
    await query(store, INSERT_CALLS + " RETURNING 1", {"user": user, "start": start, "n": 150})
    await query(store,
        "UPDATE llm_calls SET cost_usd = cost_usd * 3, provider = 'azure'"
        " WHERE user_id = %s AND id %% 4 = 0 RETURNING 1",
        (user,),
    )
    await query(store, "DELETE FROM llm_calls WHERE user_id = %s AND id %% 5 = 0 RETURNING 1",
                (user,))
    assert await difference(store) == 0
    await query(store, "DELETE FROM llm_calls WHERE user_id = %s RETURNING 1", (user,))
    assert await query(store, "SELECT 1 FROM cost_daily WHERE user_id = %s", (user,)) == []
    assert await query(store, "SELECT 1 FROM cost_monthly WHERE user_id = %s", (user,)) == []


async def test_a_window_from_the_rollup_equals_the_window_of_llm_calls(store: Store) -> None:
    user = f"u-win-{uuid.uuid4().hex[:6]}"
    today = datetime.combine(datetime.now(UTC).date(), time(0), tzinfo=UTC)
    start = today - timedelta(days=4, hours=5)
    await query(store, INSERT_CALLS + " RETURNING 1", {"user": user, "start": start, "n": 180})
    now = datetime.now(UTC)
    windows = [
        (today - timedelta(days=3, hours=7, minutes=13), None),  # ragged start, open end
        (today - timedelta(days=3), today - timedelta(days=1)),  # whole days only
        (today - timedelta(days=2, hours=2), today - timedelta(hours=30)),  # both edges ragged
        (today - timedelta(days=1, hours=20), today - timedelta(days=1, hours=3)),  # in one day
        (now - timedelta(hours=1), None),  # within today
        (today + timedelta(days=1), None),  # nothing yet
    ]
    for since, until in windows:
        await check_window(store, user, since, until, until or now + timedelta(days=1))


async def test_windows_spanning_months_equal_the_window_of_llm_calls(store: Store) -> None:
    """Whole months from cost_monthly, the days around them from cost_daily, the edges
    from llm_calls: still the raw sums, also after an update and a delete."""
    user = f"u-month-{uuid.uuid4().hex[:6]}"
    start = datetime(2025, 1, 20, 5, tzinfo=UTC)  # to mid-April, every 37 minutes
    await query(store, INSERT_CALLS + " RETURNING 1", {"user": user, "start": start, "n": 3400})
    at = datetime(2025, 1, 1, tzinfo=UTC)
    windows = [
        (at.replace(day=23, hour=7, minute=13), at.replace(month=4, day=9, hour=17)),  # ragged
        (at.replace(month=2), at.replace(month=4)),  # whole months only
        (at.replace(day=31), at.replace(month=3, day=1, hour=2)),  # one whole month, edges
        (at.replace(month=2, day=3, hour=1), at.replace(month=2, day=27)),  # within a month
        (at.replace(day=25, hour=12), None),  # open end: every month since
        (at.replace(month=3, day=31, hour=23), at.replace(month=4, day=1, hour=1)),  # no day
    ]
    for since, until in windows:
        await check_window(store, user, since, until, until or OPEN_END)
    await query(store,
        "UPDATE llm_calls SET cost_usd = cost_usd + 0.00000007, created_at = created_at"
        " + interval '20 days' WHERE user_id = %s AND id %% 3 = 0 RETURNING 1",
        (user,),
    )
    await query(store, "DELETE FROM llm_calls WHERE user_id = %s AND id %% 7 = 0 RETURNING 1",
                (user,))
    assert await difference(store) == 0
    for since, until in windows:
        await check_window(store, user, since, until, until or OPEN_END)


async def check_window(
    store: Store, user: str, since: datetime, until: datetime | None, end: datetime
) -> None:
    """Totals, per day, a breakdown and the page read of one window equal llm_calls'."""
    (raw,) = await query(store,
        "SELECT count(*) AS calls, coalesce(sum(cost_usd), 0) AS usd,"
        " count(*) FILTER (WHERE cache_hit) AS hits FROM llm_calls"
        " WHERE user_id = %s AND created_at >= %s AND created_at < %s",
        (user, since, end),
    )
    totals = await cost_totals(store, since, user, until)
    assert (totals.calls, totals.cache_hits, totals.usd) == (
        raw["calls"], raw["hits"], raw["usd"]
    ), (since, until)
    per_day = await cost_per_day(store, since, until, user=user)
    assert sum(d["calls"] for d in per_day) == raw["calls"]
    assert sum((d["usd"] for d in per_day), Decimal(0)) == raw["usd"]
    by = await cost_breakdown(store, since, ["provider", "intent"], user=user, until=until)
    raw_by = await query(store,
        "SELECT provider, intent_type AS intent, count(*) AS calls, sum(cost_usd) AS usd"
        " FROM llm_calls WHERE user_id = %s AND created_at >= %s AND created_at < %s"
        " GROUP BY 1, 2",
        (user, since, end),
    )
    got = {(r["provider"], r["intent"]): (r["calls"], r["usd"]) for r in by}
    assert got == {(r["provider"], r["intent"]): (r["calls"], r["usd"]) for r in raw_by}
    await check_the_page_read(store, user, since, until, end)


async def check_the_page_read(
    store: Store, user: str, since: datetime, until: datetime | None, end: datetime
) -> None:
    """The costs page's one-scan read: every day of the window and the user's group."""
    days, top = await cost_page(store, "user", since, until, limit=100_000)
    raw_days = await query(store,
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS calls,"
        " sum(prompt_tokens + completion_tokens) AS tokens, sum(cost_usd) AS usd"
        " FROM llm_calls WHERE created_at >= %s AND created_at < %s GROUP BY 1 ORDER BY 1",
        (since, end),
    )
    assert days == raw_days
    assert all(type(r["calls"]) is int and type(r["tokens"]) is int for r in days + top)
    mine = await query(store,
        "SELECT user_id AS user, count(*) AS calls, sum(prompt_tokens + completion_tokens)"
        " AS tokens, sum(cost_usd) AS usd FROM llm_calls"
        " WHERE user_id = %s AND created_at >= %s AND created_at < %s GROUP BY 1",
        (user, since, end),
    )
    assert [r for r in top if r["user"] == user] == mine
    by_provider = await cost_page(store, "provider", since, until)
    assert by_provider[0] == raw_days
    everyone = await query(store,
        "SELECT provider, count(*) AS calls, sum(prompt_tokens + completion_tokens) AS tokens,"
        " sum(cost_usd) AS usd FROM llm_calls WHERE created_at >= %s AND created_at < %s"
        " GROUP BY 1 ORDER BY usd DESC NULLS LAST, 1",
        (since, end),
    )
    assert by_provider[1] == everyone
    totals = await cost_totals(store, since, until=until)
    assert (totals.calls, totals.usd) == (
        sum(r["calls"] for r in everyone), sum((r["usd"] for r in everyone), Decimal(0))
    )
    by_day, top_days = await cost_page(store, "day", since, until, limit=100_000)
    assert by_day == raw_days
    assert sorted(top_days, key=lambda d: d["day"]) == raw_days  # every day


@pytest.mark.parametrize("first_new", ["0011", "0016"])
async def test_the_migration_backfills_existing_rows(pg_server: str, first_new: str) -> None:
    """Rows written before 0011 (no rollup) or before 0016 (cost_daily only) are in every
    rollup after the migration, and windows spanning months still equal llm_calls."""
    before = [(v, sql) for v, sql in available_migrations() if v < first_new]
    with scratch_database(pg_server, prefix="fleet_rollup") as url:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute(
                "CREATE TABLE schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for version, sql in before:
                await conn.execute(sql.encode())
                await conn.execute("INSERT INTO schema_migrations VALUES (%s)", (version,))
            start = datetime.now(UTC) - timedelta(days=80)  # every 37 minutes: over 2 months
            for user in ("a", "b", "c"):
                await conn.execute(INSERT_CALLS, {"user": user, "start": start, "n": 3000})
        assert await migrate(url) == [v for v, _ in available_migrations() if v >= first_new]
        async with Store(url) as migrated:
            assert await difference(migrated) == 0
            (rolled,) = await query(migrated, "SELECT sum(calls) AS n FROM cost_monthly")
            assert rolled["n"] == 9000
            await query(migrated, INSERT_CALLS + " RETURNING 1",
                        {"user": "a", "start": datetime.now(UTC), "n": 3})
            assert await difference(migrated) == 0
            since = start + timedelta(days=3, hours=5)
            await check_window(migrated, "b", since, None, datetime.now(UTC) + timedelta(days=1))
