"""Budget alerts: each threshold of a budget fires once per period, fleet-wide.

A threshold (percent of the amount) is crossed when the period's settled spend
reaches it, or, for thresholds up to 100, when the budget refuses a workflow because
it has no room left. The first process to insert the ``budget_alerts`` row fires it:
a ``budget_alert`` log event, the ``BudgetAlerts`` metric (CloudWatch, dimensions
Scope and Threshold; ``fleet_budget_alerts`` on /metrics) and, when
FLEET_ALERT_WEBHOOK_URL is set, a POST of ``{"text": ...}`` (what a Slack incoming
webhook accepts). The POST runs in a tracked task, retried with backoff; a failing
webhook never blocks work (delivery is at most once per threshold and period).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date
from decimal import Decimal
from typing import Any

import backoff
import structlog

from worker.errors import PermanentError, WorkerError
from worker.observability.metrics import Metrics
from worker.outbound import JsonPoster, Send, status_error
from worker.store.budgets import Budget, BudgetTable

__all__ = ["Alerts", "alert_text"]

log = structlog.get_logger("worker.spend")
WEBHOOK_TRIES = 6
WEBHOOK_TIME_LIMIT = 10.0


def alert_text(budget: Budget, period: date, threshold: int, spent: Decimal) -> str:
    """The one line an operator reads in Slack."""
    share = spent * 100 / budget.amount_usd if budget.amount_usd else Decimal(100)
    return (
        f":warning: budget {budget.target} ({budget.period} of {period.isoformat()}) "
        f"crossed {threshold}%: ${spent.quantize(Decimal('0.0001'))} of "
        f"${budget.amount_usd.normalize()} ({share:.0f}%), action {budget.action}"
    )


class Alerts:
    """Fires crossed thresholds, each once per budget and period across the fleet."""

    def __init__(
        self,
        table: BudgetTable,
        metrics: Metrics | None = None,
        webhook_url: str | None = None,
        *,
        send: Send | None = None,
        max_wait: float = 60.0,
    ) -> None:
        self._table = table
        self._metrics = metrics
        self._poster = (
            JsonPoster(
                "alert_webhook", webhook_url, {}, connections=4, connect_timeout=5, send=send
            )
            if webhook_url
            else None
        )
        self._max_wait = max_wait
        self._known: set[tuple[int, date, int]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def check(
        self, budget: Budget, period: date, spent: Decimal, *, exhausted: bool = False
    ) -> None:
        """Fire the thresholds ``spent`` (or exhaustion) reaches that no one fired yet."""
        amount = budget.amount_usd
        for threshold in budget.thresholds:
            crossed = spent > 0 and spent * 100 >= amount * threshold
            reached = crossed or (exhausted and threshold <= 100)
            key = (budget.id, period, threshold)
            if not reached or key in self._known:
                continue
            self._known.add(key)
            try:
                first = await self._table.mark_alert(budget.id, period, threshold, spent)
            except WorkerError as exc:  # not marked: the next check tries again
                self._known.discard(key)
                log.warning("budget_alert_not_saved", error=str(exc))
                continue
            if first:
                self._fire(budget, period, threshold, spent)

    def _fire(self, budget: Budget, period: date, threshold: int, spent: Decimal) -> None:
        log.warning(
            "budget_alert",
            budget=budget.target,
            period=budget.period,
            period_start=period.isoformat(),
            threshold=threshold,
            spent_usd=str(spent),
            amount_usd=str(budget.amount_usd),
            action=budget.action,
        )
        if self._metrics is not None:
            self._metrics.budget_alert(budget.scope, threshold)
        if self._poster is not None:
            text = alert_text(budget, period, threshold, spent)
            task = asyncio.create_task(self._post({"text": text}, budget.target, threshold))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _post(self, payload: dict[str, Any], target: str, threshold: int) -> None:
        poster = self._poster
        assert poster is not None

        @backoff.on_exception(
            backoff.expo,
            WorkerError,
            max_tries=WEBHOOK_TRIES,
            max_time=self._max_wait,
            giveup=lambda exc: isinstance(exc, PermanentError),  # 4xx: the payload or URL
            logger=None,
        )
        async def once() -> None:
            reply = await poster.post("", payload, time_limit=WEBHOOK_TIME_LIMIT)
            if not reply.is_success:
                raise status_error("alert_webhook", reply.status, reply.headers)

        try:
            await once()
        except WorkerError as exc:
            log.error(
                "budget_alert_webhook_failed", budget=target, threshold=threshold, error=str(exc)
            )

    async def close(self, within: float = 5.0) -> None:
        """Give webhook posts in flight ``within`` seconds, then cancel them."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=within)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._poster is not None:
            await self._poster.close()
