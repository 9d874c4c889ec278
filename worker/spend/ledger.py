"""The process's side of the budgets: reserve before a call, settle after, lease in chunks.

Every budget that covers a call (global, the user's, the intent type's, the
provider/model's; ``covering``) gets the call's estimated cost reserved against this
process's lease of that budget's period. When the lease is short, the process leases
more from the ``budget_usage`` row (``BudgetTable.lease``): at most
FLEET_BUDGET_LEASE_USD and a twentieth of the amount at once, and only while the
period's spent + leased stays within the amount. Settling moves the reservation to
settled cost in memory; every FLEET_BUDGET_FLUSH_SECONDS the settled cost is added to
the row's spend and every lease not backing a call in flight is given back. So the row
is written once per chunk and once per flush per budget and process, never per call,
and the fleet's spend passes a budget only by what a reservation under-estimated.

A reservation that may be refused (the workflow's first call) and finds no room raises
``OverBudget``: *exhausted* when even the unleased amount cannot hold it (the workflow
waits for the period's reset, or goes to the DLQ, as the budget's action says), else
*contended* (calls in flight hold the room leased: re-checked after two flushes).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

import structlog

from worker.config import SpendSettings
from worker.errors import OverBudget, WorkerError
from worker.observability.metrics import Metrics
from worker.providers.gate import CallAsk
from worker.spend.alerts import Alerts
from worker.spend.periods import period_start, seconds_to_reset
from worker.store.budgets import Budget, BudgetTable, Grant

__all__ = ["Account", "SpendLedger", "SpendTicket", "budget_intent"]

log = structlog.get_logger("worker.spend")
ZERO = Decimal(0)
CHUNK_SHARE = Decimal(20)  # a lease is at most amount / CHUNK_SHARE


def budget_intent(intent: str) -> str:
    """A campaign's chunks (``campaign_batch``) count against the campaign's intent type."""
    return "campaign_execution" if intent == "campaign_batch" else intent


@dataclass(slots=True)
class Account:
    """One budget's period as this process holds it."""

    budget: Budget
    period: date
    leased: Decimal = ZERO  # held in the row's leased_usd by this process
    reserved: Decimal = ZERO  # estimates of calls in flight
    settled: Decimal = ZERO  # real cost settled, not yet added to the row's spend
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    refused: tuple[float, Grant] | None = None  # (when, the row) of the last exhausted refusal
    unrecorded: int = 0  # refusals answered from ``refused``, not yet counted in the row

    @property
    def free(self) -> Decimal:
        return self.leased - self.reserved - self.settled


class SpendTicket:
    """The reservations of one call; ``settle`` once with its real cost."""

    def __init__(self, holds: list[tuple[Account, Decimal]]) -> None:
        self._holds = holds

    def settle(self, cost: Decimal) -> None:
        for account, estimate in self._holds:
            account.reserved -= estimate
            account.settled += cost
        self._holds = []


class SpendLedger:
    """Implements ``worker.providers.gate.SpendGate`` for one worker process."""

    def __init__(
        self,
        table: BudgetTable,
        settings: SpendSettings,
        alerts: Alerts,
        metrics: Metrics | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._table = table
        self._settings = settings
        self._alerts = alerts
        self._metrics = metrics
        self._clock = clock
        self._budgets: dict[tuple[str, str], list[Budget]] = {}
        self._accounts: dict[tuple[int, date], Account] = {}

    async def refresh(self) -> None:
        """Re-read the budgets (``fleet budgets set`` takes effect within the refresh)."""
        budgets: dict[tuple[str, str], list[Budget]] = {}
        for budget in await self._table.all():
            budgets.setdefault((budget.scope, budget.subject), []).append(budget)
        self._budgets = budgets
        fresh = {b.id: b for found in budgets.values() for b in found}
        for account in self._accounts.values():
            account.budget = fresh.get(account.budget.id, account.budget)

    def covering(self, ask: CallAsk) -> list[Budget]:
        keys = (
            ("global", ""),
            ("user", ask.user_id),
            ("intent", budget_intent(ask.intent)),
            ("model", f"{ask.provider}:{ask.model}"),
        )
        return [budget for key in keys for budget in self._budgets.get(key, ())]

    async def reserve(self, ask: CallAsk) -> SpendTicket:
        holds: list[tuple[Account, Decimal]] = []
        budgets = self.covering(ask)
        cost = ask.estimate() if budgets else ZERO
        try:
            for budget in budgets:
                account = self._account(budget)
                await self._hold(account, ask, cost)
                holds.append((account, cost))
        except BaseException:
            SpendTicket(holds).settle(ZERO)  # nothing was spent
            raise
        return SpendTicket(holds)

    def _account(self, budget: Budget) -> Account:
        period = period_start(budget.period, self._settings.budget_timezone, self._clock())
        account = self._accounts.get((budget.id, period))
        if account is None:
            account = self._accounts[(budget.id, period)] = Account(budget, period)
        return account

    async def _hold(self, account: Account, ask: CallAsk, cost: Decimal) -> None:
        budget = account.budget
        if not budget.enforced:  # alert-only: counted, never refused, nothing leased
            account.reserved += cost
            return
        async with account.lock:
            known = self._still_exhausted(account, cost) if ask.admit else None
            if known is not None and account.free < cost:
                await self._refuse(account, known, cost, fresh=False)  # no row lock
            if account.free < cost:
                need = cost - max(account.free, ZERO)
                most = Decimal(str(self._settings.budget_lease_usd))
                chunk = min(most, budget.amount_usd / CHUNK_SHARE)
                grant = await self._table.lease(
                    budget.id, account.period, max(need, chunk), need, enforce=ask.admit
                )
                if not grant.granted:
                    await self._refuse(account, grant, cost, fresh=True)
                account.leased += grant.granted
            account.reserved += cost

    def _still_exhausted(self, account: Account, cost: Decimal) -> Grant | None:
        """The row of an exhausted refusal less than a flush interval old that would refuse
        ``cost`` too (the amount unchanged): held work re-asks this process, not the row."""
        if account.refused is None:
            return None
        when, grant = account.refused
        recent = time.monotonic() - when < self._settings.budget_flush_seconds
        same = grant.amount_usd == account.budget.amount_usd
        return grant if recent and same and grant.spent_usd + cost > grant.amount_usd else None

    async def _refuse(self, account: Account, grant: Grant, cost: Decimal, fresh: bool) -> None:
        budget = account.budget
        exhausted = grant.spent_usd + cost > grant.amount_usd
        if fresh:
            account.refused = (time.monotonic(), grant) if exhausted else None
        else:  # answered without the row: counted there at the next flush
            account.unrecorded += 1
        if self._metrics is not None:
            self._metrics.budget_refused(budget.scope)
        if not exhausted:
            raise OverBudget(
                f"budget {budget.target}: its room is held by calls in flight for now",
                action="hold",
                seconds=2 * self._settings.budget_flush_seconds,
                exhausted=False,
            )
        await self._alerts.check(budget, account.period, grant.spent_usd, exhausted=True)
        zone = self._settings.budget_timezone
        reset = seconds_to_reset(budget.period, zone, self._clock())
        raise OverBudget(
            f"budget {budget.target} ({budget.period}): ${grant.spent_usd:.4f} of "
            f"${budget.amount_usd} spent, the next call may cost ${cost:.4f}",
            action=budget.action,
            seconds=min(reset, float(self._settings.budget_hold_seconds)),
            exhausted=True,
        )

    async def flush(self) -> None:
        """Settled cost to the rows, unused lease back; alerts for the new totals."""
        for key, account in list(self._accounts.items()):
            async with account.lock:
                spent, release = account.settled, max(ZERO, account.leased - account.reserved)
                refusals = account.unrecorded
                if not spent and not release and not refusals:
                    if not account.reserved and key[1] != self._current(account):
                        del self._accounts[key]  # a past period with nothing left in it
                    continue
                account.settled -= spent
                account.leased -= release
                account.unrecorded = 0
                try:
                    totals = await self._table.settle(
                        account.budget.id, key[1], spent, release, refused=refusals
                    )
                except WorkerError as exc:
                    account.settled += spent
                    account.leased += release
                    account.unrecorded += refusals
                    log.warning("budget_flush_failed", budget=account.budget.target, error=str(exc))
                    continue
            if totals is None:  # the budget was deleted: nothing to account to
                self._accounts.pop(key, None)
            else:
                await self._alerts.check(account.budget, key[1], totals[0])

    def _current(self, account: Account) -> date:
        zone = self._settings.budget_timezone
        return period_start(account.budget.period, zone, self._clock())

    async def run(self) -> None:
        """Flush every FLEET_BUDGET_FLUSH_SECONDS, re-read budgets every
        FLEET_BUDGET_REFRESH_SECONDS (until cancelled)."""
        loop = asyncio.get_running_loop()
        next_refresh = loop.time() + self._settings.budget_refresh_seconds
        while True:
            await asyncio.sleep(self._settings.budget_flush_seconds)
            await self.flush()
            if loop.time() >= next_refresh:
                next_refresh = loop.time() + self._settings.budget_refresh_seconds
                with contextlib.suppress(WorkerError):
                    await self.refresh()

    async def close(self) -> None:
        """Shutdown: a last flush (returns this process's leases), then the webhooks."""
        await self.flush()
        await self._alerts.close()
