"""Budgets end to end: two `fleet run` processes, one user with a tiny daily budget and
200 queued intents, other users beside it, a local webhook receiving the alerts; then a
simulated period reset (the workers restart in a time zone whose date is later). And
the A/B variant recorded on workflows and cost rows, reported by `fleet costs`."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from tests.support import Factory, drain, envelope, send_bodies, serving
from tests.support.cli import LoggedProcess, env_for, fleet
from tests.support.db import query
from worker.config import Settings
from worker.store import Store

# Local dates in these two zones always differ (26 hours apart): restarting the workers
# from the first to the second is the period reset, without waiting for midnight.
BEFORE, AFTER = "Etc/GMT+12", "Etc/GMT-14"
TIGHT_INTENTS, OTHER_USERS = 200, 10
# about 125 of the tight user's workflows fit the budget: the rest wait for the reset,
# and then fill more than half of the next day's budget (its 50 % alert fires too)
WORKFLOWS_PER_BUDGET = 125
WORKFLOW_USD = Decimal("0.000032")  # one message_generation on the fake, gpt-4o-mini


class Webhook:
    """A Slack-style receiver that answers 500 to its first post (the sender retries)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.calls = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        body = await request.json()
        assert set(body) == {"text"}  # what a Slack incoming webhook accepts
        if self.calls == 1:
            return web.Response(status=500, text="try again")
        self.texts.append(body["text"])
        return web.Response(text="ok")

    def fired(self) -> Counter[tuple[str, int]]:
        """(period start, threshold) -> times delivered."""
        found = (re.search(r"of (\d{4}-\d\d-\d\d)\) crossed (\d+)%", text) for text in self.texts)
        return Counter((m.group(1), int(m.group(2))) for m in found if m)


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[Webhook, str]]:
    hook = Webhook()
    async with serving({"/hook": hook.handle}) as url:
        yield hook, f"{url}/hook"


def intents(user: str, count: int) -> list[Any]:
    return [
        envelope(
            {
                "type": "message_generation",
                "userId": user,
                "contentType": "dm",
                "data": {"context": f"hello {i}", "fanName": "Sam"},
            }
        )
        for i in range(count)
    ]


async def run_workers(settings: Settings, until: Any, within: float) -> None:
    """Two `fleet run` processes until ``until()`` is true, then SIGTERM."""
    env = env_for(settings)
    workers = [await LoggedProcess.start(["run"], env) for _ in range(2)]
    try:
        async with asyncio.timeout(within):
            while not await until():  # noqa: ASYNC110 - worker processes write the state
                await asyncio.sleep(0.5)
    finally:
        for worker in workers:
            code, log = await worker.finish(signal.SIGTERM, within=20)
            assert code == 0, log[-2000:]


async def spend_of(store: Store, user: str) -> Decimal:
    rows = await query(
        store, "SELECT coalesce(sum(cost_usd), 0) AS usd FROM llm_calls WHERE user_id = %s", (user,)
    )
    return Decimal(rows[0]["usd"])


async def counts(store: Store, users: list[str]) -> dict[str, int]:
    rows = await query(
        store,
        "SELECT status, count(*) AS n FROM workflows WHERE user_id = ANY(%s) GROUP BY 1",
        (users,),
    )
    return {row["status"]: int(row["n"]) for row in rows}


async def test_a_tiny_daily_budget_holds_fleet_wide_and_resets(
    make_settings: Factory, store: Store, webhook: tuple[Webhook, str]
) -> None:
    hook, url = webhook
    tight = f"tight-{uuid.uuid4().hex[:8]}"
    others = [f"other-{uuid.uuid4().hex[:6]}-{i}" for i in range(OTHER_USERS)]
    settings = await make_settings(
        concurrency=8,
        user_share=1,
        budget_timezone=BEFORE,
        budget_flush_seconds=0.5,
        budget_refresh_seconds=1,
        budget_hold_seconds=1,
        alert_webhook_url=url,
    )
    amount = WORKFLOW_USD * WORKFLOWS_PER_BUDGET
    made = fleet(
        ["budgets", "set", f"user:{tight}", "--amount", str(amount), "-o", "json"],
        env_for(settings),
    )
    assert made.returncode == 0, made.stderr
    budget = json.loads(made.stdout)
    await send_bodies(
        settings,
        [*intents(tight, TIGHT_INTENTS), *(e for user in others for e in intents(user, 2))],
    )

    async def held() -> bool:
        """Other users done; every tight workflow seen and the done ones stopped growing."""
        mine, theirs = await counts(store, [tight]), await counts(store, others)
        return (
            theirs.get("completed", 0) == 2 * OTHER_USERS
            and sum(mine.values()) == TIGHT_INTENTS
            and mine.get("running", 0) == 0
            and (100 in {t for _, t in hook.fired()})
        )

    await run_workers(settings, held, within=60)
    spent, first = await spend_of(store, tight), await counts(store, [tight])
    # one reservation: 250 output tokens allowed at $0.60/M plus a ~300-token prompt at $0.15/M
    reservation = Decimal("0.0002")
    print(f"budget ${amount}, spent ${spent}, overspend ${spent - amount}, done {first}")
    assert spent <= amount + reservation
    assert 0 < first.get("completed", 0) < TIGHT_INTENTS
    assert first.get("failed", 0) == 0  # held, not failed
    shown = fleet(["budgets", "show", f"user:{tight}", "-o", "json"], env_for(settings))
    assert shown.returncode == 0, shown.stderr
    use = json.loads(shown.stdout)
    assert Decimal(use["spentUsd"]) == spent and use["alertsFired"] == [50, 80, 100]
    assert Decimal(use["leasedUsd"]) == 0  # every lease given back at shutdown
    costs = fleet(["costs", "--user", tight, "-o", "json"], env_for(settings))
    assert [b["target"] for b in json.loads(costs.stdout)["budgets"]] == [f"user:{tight}"]

    later = settings.model_copy(update={"budget_timezone": AFTER})

    async def all_done() -> bool:
        return (await counts(store, [tight])).get("completed", 0) == TIGHT_INTENTS

    await run_workers(later, all_done, within=60)
    await asyncio.sleep(1.5)  # the last webhook posts of the shutdown flush
    fired = hook.fired()
    assert all(times == 1 for times in fired.values()), fired
    periods = sorted({period for period, _ in fired})
    assert len(periods) == 2
    assert {t for p, t in fired if p == periods[0]} == {50, 80, 100}
    assert 50 in {t for p, t in fired if p == periods[1]}
    rows = await query(
        store,
        "SELECT period_start, threshold FROM budget_alerts WHERE budget_id = %s",
        (budget["id"],),
    )
    assert len(rows) == len(fired)
    dead = await query(store, "SELECT count(*) AS n FROM dead_letters WHERE user_id = %s", (tight,))
    assert dead[0]["n"] == 0


async def test_the_variant_is_recorded_sticky_and_reported(
    make_settings: Factory, store: Store
) -> None:
    variants = {
        "message_generation": {
            "experiment": f"mg-{uuid.uuid4().hex[:6]}",
            "variants": {
                "control": {"share": 50},
                "short": {"share": 50, "model": "gpt-4.1-mini", "prompt": "short"},
            },
        }
    }
    settings = await make_settings(variants=json.dumps(variants))
    users = [f"ab-{uuid.uuid4().hex[:6]}-{i}" for i in range(30)]
    await send_bodies(settings, [e for user in users for e in intents(user, 2)])
    await drain(settings)
    rows = await query(
        store,
        "SELECT w.user_id, w.variant, w.status, c.variant AS call_variant, c.model"
        " FROM workflows w JOIN llm_calls c ON c.workflow_id = w.id"
        " WHERE w.user_id = ANY(%s)",
        (users,),
    )
    assert len(rows) == 60 and all(r["status"] == "completed" for r in rows)
    by_user: dict[str, set[str]] = {}
    for row in rows:
        assert row["variant"] == row["call_variant"]
        short = row["variant"].endswith("/short")
        assert row["model"] == ("gpt-4.1-mini" if short else "gpt-4o-mini")
        by_user.setdefault(row["user_id"], set()).add(row["variant"])
    assert all(len(seen) == 1 for seen in by_user.values())  # sticky per user
    assert len({v for seen in by_user.values() for v in seen}) == 2
    result = fleet(["costs", "--by", "variant", "-o", "json"], env_for(settings))
    assert result.returncode == 0, result.stderr
    report = {r["variant"]: r for r in json.loads(result.stdout)["variants"]}
    mine = [
        r
        for name, r in report.items()
        if name.startswith(variants["message_generation"]["experiment"])
    ]
    assert sum(r["workflows"] for r in mine) == 60
    assert all(Decimal(r["usd"]) > 0 and r["failureRate"] == 0 for r in mine), mine
