"""Spend control below the worker: A/B assignment, budget periods, the lease ledger on
real Postgres (two ledgers stand for two processes), alerts once per period."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from structlog.testing import capture_logs

from tests.support.db import query
from tests.test_verdicts import _work
from worker.config import Experiment, SpendSettings, load_settings
from worker.consumer.decide import Decider
from worker.consumer.spending import build_variants
from worker.consumer.verdicts import DeadLetter, Postpone, ruling_of
from worker.errors import ConfigError, OverBudget
from worker.observability.metrics import Metrics
from worker.outbound import Reply
from worker.providers import CallAsk, ChatRequest, PriceTable
from worker.providers.gate import Admission
from worker.spend.alerts import Alerts
from worker.spend.ledger import SpendLedger
from worker.spend.periods import period_start, seconds_to_reset
from worker.spend.variants import Variants, bucket
from worker.store import BudgetTable, Store

NOON = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def experiment(shares: Mapping[str, float]) -> Experiment:
    return Experiment.model_validate(
        {"experiment": "mg-test", "variants": {k: {"share": v} for k, v in shares.items()}}
    )


# --- A/B ---------------------------------------------------------------------------
def test_variant_shares_hold_within_five_percent_over_1000_users_and_stick() -> None:
    variants = Variants(
        {"message_generation": experiment({"control": 60, "mini": 30, "short": 10})}
    )
    seen: Counter[str] = Counter()
    for i in range(1000):
        arm = variants.arm_for("message_generation", f"user-{i}")
        assert arm is not None
        seen[arm.name] += 1
        again = variants.arm_for("message_generation", f"user-{i}")
        assert again is not None and again.name == arm.name  # sticky
    assert abs(seen["mg-test/control"] / 1000 - 0.60) <= 0.05
    assert abs(seen["mg-test/mini"] / 1000 - 0.30) <= 0.05
    assert abs(seen["mg-test/short"] / 1000 - 0.10) <= 0.05
    assert variants.arm_for("content_planning", "user-1") is None


def test_a_new_experiment_name_reshuffles_users() -> None:
    moved = sum(bucket("a", f"u{i}") < 0.5 != (bucket("b", f"u{i}") < 0.5) for i in range(400))
    assert 100 < moved < 300  # independent halves: about half move


def test_variant_settings_are_checked() -> None:
    raw = '{"message_generation": {"experiment": "e", "variants": {"a": {"share": 60}}}}'
    with pytest.raises(ConfigError, match="shares add up to 60"):
        load_settings(variants=raw)
    with pytest.raises(ConfigError, match="FLEET_BUDGET_TIMEZONE"):
        load_settings(budget_timezone="Mars/Olympus")


# --- periods -------------------------------------------------------------------------
def test_periods_follow_the_configured_time_zone() -> None:
    late = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    assert period_start("day", "UTC", late) == date(2026, 12, 31)
    assert period_start("day", "Europe/Paris", late) == date(2027, 1, 1)
    assert period_start("month", "Europe/Paris", late) == date(2027, 1, 1)
    assert period_start("month", "UTC", late) == date(2026, 12, 1)
    assert seconds_to_reset("day", "UTC", late) == 1800
    assert seconds_to_reset("day", "Europe/Paris", late) == 23.5 * 3600


def test_over_budget_has_its_own_ruling() -> None:
    exc = OverBudget("no room", action="hold", seconds=5, exhausted=True)
    assert ruling_of(exc) == "over_budget"


# --- the ledger on Postgres ----------------------------------------------------------
def spend_settings(**overrides: object) -> SpendSettings:
    values: dict[str, object] = {"budget_lease_usd": 1.0, "budget_hold_seconds": 30}
    values.update(overrides)
    return load_settings(**values).spend


def ask(user: str, max_tokens: int = 1000, admit: bool = True) -> CallAsk:
    request = ChatRequest([{"role": "user", "content": "hi"}], "gpt-4o-mini", max_tokens=max_tokens)
    return CallAsk("openai", "message_generation", user, admit, request, PriceTable())


class Hook:
    """A webhook that fails its first ``failures`` posts, then accepts."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.posts: list[bytes] = []

    async def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        self.posts.append(body)
        if len(self.posts) <= self.failures:
            return Reply(503, {}, b"busy")
        return Reply(200, {}, b"ok")


def ledger_for(store: Store, hook: Hook, **overrides: object) -> SpendLedger:
    table = BudgetTable(store)
    alerts = Alerts(table, None, "http://hooks.invalid/x", send=hook, max_wait=10)
    return SpendLedger(table, spend_settings(**overrides), alerts, clock=lambda: NOON)


async def test_two_ledgers_share_a_budget_and_spend_never_passes_it(store: Store) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    estimate = ask(user).estimate()  # 1000 output tokens of gpt-4o-mini: $0.0006...
    table = BudgetTable(store)
    budget = await table.put("user", user, "day", estimate * 10, "hold", [50, 100])
    hook = Hook(failures=1)
    one, two = ledger_for(store, hook), ledger_for(store, hook)
    await one.refresh()
    await two.refresh()
    spent, refused = Decimal(0), 0
    for turn in range(40):
        ledger = (one, two)[turn % 2]
        try:
            ticket = await ledger.reserve(ask(user))
        except OverBudget as exc:
            refused += 1
            assert exc.action == "hold"
            await ledger.flush()  # contended: the other's lease comes back at its flush
            await (two if ledger is one else one).flush()
            continue
        ticket.settle(estimate)  # the worst case: every token allowed was used
        spent += estimate
    await one.close()
    await two.close()
    assert spent <= budget.amount_usd
    assert spent >= budget.amount_usd - estimate  # nothing lost in leases
    rows = await query(store, "SELECT * FROM budget_usage WHERE budget_id = %s", (budget.id,))
    assert Decimal(rows[0]["spent_usd"]) == spent
    assert Decimal(rows[0]["leased_usd"]) == 0  # every lease came back at close
    assert refused > 0
    fired = await query(
        store, "SELECT threshold FROM budget_alerts WHERE budget_id = %s", (budget.id,)
    )
    assert sorted(r["threshold"] for r in fired) == [50, 100]
    assert [b'"crossed 50%' in p or b"crossed 50%" in p for p in hook.posts].count(True) == 2
    assert len(hook.posts) == 3  # 50 % failed once and was retried; 100 % once


async def test_every_refusal_is_counted_also_those_answered_from_memory(store: Store) -> None:
    """After the first exhausted refusal a worker answers from memory (no row lock);
    those refusals reach the row's count at its next flush."""
    user = f"u-{uuid.uuid4().hex[:8]}"
    estimate = ask(user).estimate()
    await BudgetTable(store).put("user", user, "day", estimate / 2, "dead_letter", [100])
    ledger = ledger_for(store, Hook(), budget_flush_seconds=60)
    await ledger.refresh()
    for _ in range(4):
        with pytest.raises(OverBudget):
            await ledger.reserve(ask(user))
    counted = "SELECT refused FROM budget_usage u JOIN budgets b ON b.id = u.budget_id" \
        " WHERE b.subject = %s"
    assert [r["refused"] for r in await query(store, counted, (user,))] == [1]  # the row's
    await ledger.flush()
    assert [r["refused"] for r in await query(store, counted, (user,))] == [4]
    await ledger.close()


async def test_later_calls_of_a_started_workflow_are_never_refused(store: Store) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    estimate = ask(user).estimate()
    await BudgetTable(store).put("user", user, "day", estimate * 3 / 2, "dead_letter", [100])
    ledger = ledger_for(store, Hook())
    await ledger.refresh()
    (await ledger.reserve(ask(user))).settle(estimate)
    await ledger.flush()
    with pytest.raises(OverBudget) as refused:
        await ledger.reserve(ask(user))  # another workflow: not admitted
    assert refused.value.action == "dead_letter" and refused.value.exhausted
    repair = await ledger.reserve(ask(user, admit=False))  # a started workflow's repair
    repair.settle(estimate)
    await ledger.close()
    rows = await query(
        store,
        "SELECT spent_usd FROM budget_usage u JOIN budgets b"
        " ON b.id = u.budget_id WHERE b.subject = %s",
        (user,),
    )
    assert Decimal(rows[0]["spent_usd"]) == 2 * estimate  # overdraw: one workflow's calls


async def test_alert_only_budgets_count_but_never_refuse(store: Store) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    await BudgetTable(store).put("user", user, "day", Decimal("0.000001"), "alert", [100, 200])
    hook, metrics = Hook(), Metrics()
    table = BudgetTable(store)
    alerts = Alerts(table, metrics, "http://hooks.invalid/x", send=hook)
    ledger = SpendLedger(table, spend_settings(), alerts, metrics, clock=lambda: NOON)
    await ledger.refresh()
    with capture_logs() as logs:
        for _ in range(3):
            (await ledger.reserve(ask(user))).settle(Decimal("0.000001"))
        await ledger.close()
    assert len(hook.posts) == 2  # 100 % and 200 %, once each
    assert json.loads(hook.posts[0])["text"].startswith(f":warning: budget user:{user} (day")
    events = [e for e in logs if e["event"] == "budget_alert"]
    assert sorted(e["threshold"] for e in events) == [100, 200]
    sent = {key for key in metrics.drain() if key[0] == "BudgetAlerts"}
    assert sent == {
        ("BudgetAlerts", (("Scope", "user"), ("Threshold", t)), "Count") for t in ("100", "200")
    }


# --- the verdict -------------------------------------------------------------------
def test_over_budget_holds_or_dead_letters_as_the_budget_says() -> None:
    settings = load_settings(budget_hold_max=3600)
    decider = Decider(settings.consumer, None, None, None, "me", spend=settings.spend)  # type: ignore[arg-type]
    work = _work()
    hold = OverBudget("full", action="hold", seconds=900, exhausted=True)
    held = decider.verdict_for(work, hold)
    assert isinstance(held, Postpone) and held.seconds == 900
    refused = decider.verdict_for(
        work, OverBudget("full", action="dead_letter", seconds=1, exhausted=True)
    )
    assert isinstance(refused, DeadLetter) and (refused.error_class, refused.code) == (
        "permanent",
        "over_budget",
    )
    old = work.envelope.model_copy(update={"enqueued_at": NOON.replace(year=2025)})
    work.envelope = old
    too_long = decider.verdict_for(work, hold)  # held past FLEET_BUDGET_HOLD_MAX: the DLQ
    assert isinstance(too_long, DeadLetter) and too_long.code == "over_budget"


# --- admission: a workflow's concurrent first calls ------------------------------------
class SlowGate:
    """Refuses (or grants) the admitting reservation after a pause; records every ask."""

    def __init__(self, refuse: bool) -> None:
        self.refuse = refuse
        self.asked: list[bool] = []

    async def reserve(self, ask: CallAsk) -> Any:
        self.asked.append(ask.admit)
        if ask.admit:
            await asyncio.sleep(0.01)
            if self.refuse:
                raise OverBudget("full", action="hold", seconds=1, exhausted=True)
        return SimpleNamespace(settle=lambda cost: None)


@pytest.mark.parametrize("refuse", [True, False])
async def test_concurrent_first_calls_wait_for_the_admission(refuse: bool) -> None:
    gate, admission = SlowGate(refuse), Admission()
    request = ChatRequest([{"role": "user", "content": "hi"}], "gpt-4o-mini")

    def asking(admit: bool) -> CallAsk:
        return CallAsk("openai", "campaign_execution", "u", admit, request, PriceTable())

    results = await asyncio.gather(
        *(admission.reserve(gate, asking) for _ in range(5)), return_exceptions=True
    )
    if refuse:  # one refusal for all of them; none reserved, so none calls
        assert gate.asked == [True]
        assert all(isinstance(r, OverBudget) for r in results)
    else:  # one admission, then calls of a started workflow (never refused)
        assert gate.asked == [True, False, False, False, False]
        assert not any(isinstance(r, BaseException) for r in results)


def test_a_variant_prompt_must_exist_at_start_up() -> None:
    def variants(prompt: str) -> SpendSettings:
        spec = {"a": {"share": 50}, "b": {"share": 50, "prompt": prompt}}
        raw = json.dumps({"message_generation": {"experiment": "e", "variants": spec}})
        return load_settings(variants=raw).spend

    arm = build_variants(variants("short")).arm_for("message_generation", "u-1")
    assert arm is not None and arm.name.startswith("e/")
    with pytest.raises(ConfigError, match=r"handlers/prompts/message_generation\.nope\.md"):
        build_variants(variants("nope"))


async def test_a_deleted_budget_stops_counting_without_errors(store: Store) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    table = BudgetTable(store)
    budget = await table.put("user", user, "day", Decimal(1), "hold", [100])
    ledger = ledger_for(store, Hook())
    await ledger.refresh()
    ticket = await ledger.reserve(ask(user))
    await table.delete(budget.id)
    ticket.settle(Decimal("0.0001"))
    with capture_logs() as logs:
        await ledger.flush()
        await ledger.refresh()
        (await ledger.reserve(ask(user))).settle(Decimal(1))  # no budget covers it now
        await ledger.close()
    assert not [e for e in logs if e["log_level"] in ("warning", "error")]
    assert await query(store, "SELECT 1 FROM budget_usage WHERE budget_id = %s", (budget.id,)) == []
