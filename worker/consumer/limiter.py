"""Adaptive concurrency: how many handlers may run at once, moved by what the
provider and the process say (as Netflix's concurrency-limits, AIMD with a
latency gradient). Pure: no clock, no I/O; the fleet feeds it one ``Sample``
per window and applies the limit it returns.

Per window, in order:

* a 429, a timeout or memory pressure: multiplicative decrease;
* the median call latency above ``tolerance`` x its baseline (plus ``slack``):
  decrease in proportion (a gradient), at most by half;
* the limit was the bottleneck (the peak in flight reached it) and nothing
  above happened: grow, doubling every two windows until the first decrease
  (slow start), then by ``step`` (a tenth) every ``settle`` windows; if the
  throughput did not
  grow with it, the growth is undone (``flat``) and tried again ``probe``
  windows later;
* otherwise hold.

The baseline latency is a moving average of the windows' medians, so a drift
over seconds is not read as congestion, a jump is; the first ``warmup``
windows only teach it (the first calls to come back are the fast ones). A floor
equal to the ceiling pins the limit.

It starts at the ceiling unless told otherwise: a worker started on a full
queue must be at speed within about two seconds, and at a provider latency of
a second or more a limit that doubles from below cannot be (each doubling
waits for the calls it started); the first 429, timeout or latency jump
brings it down within a window.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limiter", "Sample"]


@dataclass(frozen=True, slots=True)
class Sample:
    """What one window saw."""

    completed: int = 0  # provider calls answered (ok)
    latency: float | None = None  # their median, seconds
    throttled: int = 0  # 429 answers
    timeouts: int = 0  # calls that timed out
    peak_in_flight: int = 0  # the most handlers running at once
    memory_pressure: bool = False


class Limiter:
    """The limit, between ``floor`` and ``ceiling``, and the reason it last moved."""

    def __init__(
        self,
        floor: int,
        ceiling: int,
        initial: int | None = None,
        *,
        tolerance: float = 2.0,
        slack: float = 0.005,
        backoff: float = 0.75,
        step: float = 0.1,
        min_samples: int = 8,
        warmup: int = 6,
        settle: int = 3,
        probe: int = 20,
    ) -> None:
        if not 1 <= floor <= ceiling:
            raise ValueError(f"need 1 <= floor ({floor}) <= ceiling ({ceiling})")
        self.floor, self.ceiling = floor, ceiling
        start = ceiling if initial is None else initial
        self._limit = float(min(ceiling, max(floor, start)))
        self._tolerance, self._slack = tolerance, slack
        self._backoff, self._step, self._min_samples = backoff, step, min_samples
        self._baseline: float | None = None
        self._warmup = warmup  # windows with samples before latency may move the limit
        self._slow_start = True
        self._settle, self._probe = settle, probe
        self._windows: list[int] = []  # completions of each window since the limit moved
        self._hold = 0  # windows to wait before the next growth (after a useless one)
        self._growth: tuple[float, float] | None = None  # (limit, rate) before the last growth
        self.reason = "pinned" if floor == ceiling else "start"  # one word (a metric label)
        self.detail = ""
        self.moves = 0

    @property
    def limit(self) -> int:
        return int(self._limit)

    @property
    def pinned(self) -> bool:
        return self.floor == self.ceiling

    def update(self, sample: Sample) -> bool:
        """Take one window's sample; True when the limit moved."""
        if self.pinned:
            return False
        before = self.limit
        trouble = self._trouble(sample)
        if trouble is not None:
            factor, reason, detail = trouble
            self._slow_start = False
            self._move(self._limit * factor, reason, detail)
        else:
            self._grow_or_hold(sample)
        self._learn(sample)
        return self.limit != before

    def _grow_or_hold(self, sample: Sample) -> None:
        """Grow while the limit binds and each growth raised the throughput; a growth
        that raised nothing is undone, and tried again ``probe`` windows later."""
        if self._hold > 0:
            self._hold -= 1
            return
        self._windows.append(sample.completed)
        if len(self._windows) < (min(2, self._settle) if self._slow_start else self._settle):
            return
        steady = self._windows[1:] or self._windows  # the first window is transitional
        rate = sum(steady) / len(steady)
        if self._growth is not None:
            limit_before, rate_before = self._growth
            self._growth = None
            if rate < rate_before * 1.05:  # a larger limit bought nothing
                self._slow_start = False
                self._move(limit_before, "flat", "throughput did not grow with the limit")
                self._hold = self._probe
                return
        if not self._bottleneck(sample):
            return
        grown = self._limit * 2 if self._slow_start else self._limit * (1 + self._step)
        growth = (self._limit, rate)
        self._move(max(grown, self._limit + 1), "growing", "limit reached, latency holds")
        self._growth = growth

    def _trouble(self, sample: Sample) -> tuple[float, str, str] | None:
        """The decrease factor, its reason and detail, when the window saw congestion."""
        if sample.throttled:
            return self._backoff, "rate_limited", f"{sample.throttled} answers 429"
        if sample.timeouts:
            return self._backoff, "timeouts", f"{sample.timeouts} calls timed out"
        if sample.memory_pressure:
            return self._backoff, "memory", "resident memory over FLEET_MEMORY_LIMIT_MB"
        if self._baseline is None or sample.latency is None or self._warmup > 0:
            return None
        if sample.completed < self._min_samples:
            return None
        allowed = self._baseline * self._tolerance + self._slack
        if sample.latency <= allowed:
            return None
        gradient = max(0.5, allowed / sample.latency)
        detail = f"median {sample.latency * 1000:.0f} ms against {self._baseline * 1000:.0f} ms"
        return gradient, "latency", detail

    def _bottleneck(self, sample: Sample) -> bool:
        return self.limit < self.ceiling and sample.peak_in_flight >= self.limit * 0.9

    def _learn(self, sample: Sample) -> None:
        if sample.latency is not None and sample.completed >= self._min_samples:
            self._warmup = max(0, self._warmup - 1)
            if self._baseline is None:
                self._baseline = sample.latency
            else:  # a jump reads as congestion, a drift over seconds does not
                self._baseline += (sample.latency - self._baseline) * 0.2

    def _move(self, target: float, reason: str, detail: str) -> None:
        clamped = min(float(self.ceiling), max(float(self.floor), target))
        if int(clamped) != self.limit:
            self.reason, self.detail = reason, detail
            self.moves += 1
        self._growth = None
        self._windows = []
        self._limit = clamped
