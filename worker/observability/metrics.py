"""Fleet metrics: Prometheus counters for /metrics and a CloudWatch aggregate.

Every event is counted once here and fans out to both sinks. Dimensions are
bounded (intent type, provider, outcome): never user or workflow ids, which
would cost a custom metric each. CloudWatch gets statistic sets aggregated in
process and flushed on a timer by ``CloudWatchPublisher``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics", "StatSet"]

Unit = Literal["Count", "Seconds", "None"]
_BREAKER = {"closed": 0, "half_open": 1, "open": 2}
_LATENCY = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)


@dataclass(slots=True)
class StatSet:
    count: float = 0.0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)


Key = tuple[str, tuple[tuple[str, str], ...], str]


class Metrics:
    """Prometheus metrics, and (``aggregate``) the statistic sets CloudWatch drains:
    without a CloudWatch publisher nothing would drain them, so none are kept."""

    def __init__(self, *, aggregate: bool = True) -> None:
        self._aggregating = aggregate
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter("fleet_messages_received", "Messages received", registry=r)
        self.outcomes = Counter(
            "fleet_workflow_outcomes", "Workflow outcomes", ["intent", "outcome"], registry=r
        )
        self.in_flight = Gauge("fleet_in_flight", "Handlers running now", registry=r)
        self.handler_seconds = Histogram(
            "fleet_handler_seconds", "Handler latency", ["intent"], buckets=_LATENCY, registry=r
        )
        self.provider_calls = Counter(
            "fleet_provider_calls", "LLM calls", ["provider", "outcome"], registry=r
        )
        self.provider_seconds = Histogram(
            "fleet_provider_seconds", "LLM call latency", ["provider"], buckets=_LATENCY, registry=r
        )
        self.breaker = Gauge(
            "fleet_breaker_state", "0 closed, 1 half-open, 2 open", ["provider"], registry=r
        )
        self.cost = Counter("fleet_cost_usd", "LLM spend in USD", ["provider"], registry=r)
        self.extensions = Counter(
            "fleet_visibility_extensions", "Visibility extensions", registry=r
        )
        self.lost_leases = Counter("fleet_lost_leases", "Extensions that failed", registry=r)
        self.requeues = Counter(
            "fleet_fair_requeues", "Messages put back for per-user fairness", registry=r
        )
        self.budget_alerts = Counter(
            "fleet_budget_alerts", "Budget thresholds crossed", ["scope", "threshold"], registry=r
        )
        self.budget_refusals = Counter(
            "fleet_budget_refusals", "Workflows a budget held or refused", ["scope"], registry=r
        )
        self.concurrency_limit = Gauge(
            "fleet_concurrency_limit", "Handlers allowed in flight now (adaptive)", registry=r
        )
        self.concurrency_reason = Gauge(
            "fleet_concurrency_limit_reason",
            "1 for the reason the concurrency limit last moved",
            ["reason"],
            registry=r,
        )
        self.loop_lag = Gauge(
            "fleet_event_loop_lag_seconds", "How late the limiter's last tick ran", registry=r
        )
        self._listeners: list[Callable[[str, float], None]] = []
        self._lock = threading.Lock()
        self._pending: dict[Key, StatSet] = {}
        self._totals: Tally[str] = Tally()
        self._oldest_sent_ms = 0
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    # --- events ----------------------------------------------------------
    def message_received(self, count: int, oldest_sent_ms: int = 0) -> None:
        """``count`` messages received; the oldest was sent at ``oldest_sent_ms`` (epoch ms,
        0 unknown), kept for the ApproximateAgeOfOldestMessage sample."""
        if count:
            self.received.inc(count)
            self._aggregate("MessagesReceived", {}, float(count), "Count")
        if oldest_sent_ms and (self._oldest_sent_ms == 0 or oldest_sent_ms < self._oldest_sent_ms):
            self._oldest_sent_ms = oldest_sent_ms

    def workflow(self, intent: str, outcome: str, seconds: float) -> None:
        self._totals[outcome] += 1
        self._child(self.outcomes, intent, outcome).inc()
        self._child(self.handler_seconds, intent).observe(seconds)
        self._aggregate("Workflows", {"IntentType": intent, "Outcome": outcome}, 1.0, "Count")
        self._aggregate("HandlerLatency", {"IntentType": intent}, seconds, "Seconds")

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once (prometheus_client locks and
        validates on every call; this runs several times per message)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def listen(self, listener: Callable[[str, float], None]) -> None:
        """``listener(outcome, seconds)`` hears every provider call (the limiter)."""
        self._listeners.append(listener)

    def limit_moved(self, limit: int, reason: str) -> None:
        self.concurrency_limit.set(limit)
        self.concurrency_reason.clear()
        self.concurrency_reason.labels(reason).set(1)

    def provider_call(self, provider: str, outcome: str, seconds: float, cost: float) -> None:
        for listener in self._listeners:
            listener(outcome, seconds)
        self._child(self.provider_calls, provider, outcome).inc()
        self._child(self.provider_seconds, provider).observe(seconds)
        if cost:
            self._child(self.cost, provider).inc(cost)
        dims = {"Provider": provider, "Outcome": outcome}
        self._aggregate("ProviderCalls", dims, 1.0, "Count")
        # per provider, for the error-rate alarm (alarms cannot add up dimensions)
        self._aggregate("ProviderRequests", {"Provider": provider}, 1.0, "Count")
        self._aggregate(
            "ProviderErrors", {"Provider": provider}, 0.0 if outcome == "ok" else 1.0, "Count"
        )
        self._aggregate("ProviderLatency", {"Provider": provider}, seconds, "Seconds")
        if cost:
            self._aggregate("CostUSD", {"Provider": provider}, cost, "None")

    def requeued(self) -> None:
        """A fairness requeue: counted with the outcomes, not as a workflow run."""
        self._totals["requeued"] += 1
        self.requeues.inc()

    def budget_alert(self, scope: str, threshold: int) -> None:
        """A budget crossed a threshold (fired once per period fleet-wide)."""
        self.budget_alerts.labels(scope, str(threshold)).inc()
        self._aggregate("BudgetAlerts", {"Scope": scope, "Threshold": str(threshold)}, 1.0, "Count")

    def budget_refused(self, scope: str) -> None:
        """A workflow was held or dead-lettered because a budget had no room."""
        self.budget_refusals.labels(scope).inc()
        self._aggregate("BudgetRefusals", {"Scope": scope}, 1.0, "Count")

    def totals(self) -> dict[str, int]:
        """Outcome counts since start, by outcome word (``FleetStats.outcomes``)."""
        return dict(self._totals)

    def sample_message_age(self, now: float | None = None) -> None:
        """Gauge the age of the oldest message received since the last sample, then forget
        it (the next sample covers the next interval)."""
        if self._oldest_sent_ms:
            age = (time.time() if now is None else now) - self._oldest_sent_ms / 1000
            self.gauge("ApproximateAgeOfOldestMessage", max(0.0, age), "Seconds")
            self._oldest_sent_ms = 0

    def breaker_state(self, provider: str, state: str) -> None:
        self.breaker.labels(provider).set(_BREAKER.get(state, 0))

    def extension(self, ok: bool) -> None:
        (self.extensions if ok else self.lost_leases).inc()

    def gauge(self, name: str, value: float, unit: Unit = "None") -> None:
        """A CloudWatch-only sample (backlog per worker, age of the oldest message)."""
        self._aggregate(name, {}, value, unit)

    # --- sinks -----------------------------------------------------------
    def _aggregate(self, name: str, dims: dict[str, str], value: float, unit: Unit) -> None:
        if not self._aggregating:
            return
        key: Key = (name, tuple(sorted(dims.items())), unit)
        with self._lock:
            stat = self._pending.get(key)
            if stat is None:
                stat = self._pending[key] = StatSet()
            stat.add(value)

    def drain(self) -> dict[Key, StatSet]:
        """The statistic sets since the last drain (for CloudWatch)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending

    def restore(self, pending: dict[Key, StatSet]) -> None:
        """Put back sets a failed flush could not send (merged with newer ones)."""
        with self._lock:
            for key, stat in pending.items():
                mine = self._pending.setdefault(key, StatSet())
                mine.count += stat.count
                mine.total += stat.total
                mine.low = min(mine.low, stat.low)
                mine.high = max(mine.high, stat.high)

    def prometheus(self) -> bytes:
        return generate_latest(self.registry)
