"""A circuit breaker per provider, so a dead provider costs no timeouts.

closed ──(N consecutive failures, or failure rate ≥ R over ≥ M calls in the
window)──▶ open ──(cool-down elapsed)──▶ half_open: one probe call
half_open ──probe succeeds──▶ closed; ──probe fails──▶ open again.
The clock is injectable so tests need no sleeps.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import structlog

__all__ = ["BreakerPolicy", "CircuitBreaker", "State"]

State = Literal["closed", "open", "half_open"]
log = structlog.get_logger("worker.providers.breaker")


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    consecutive_failures: int = 5
    failure_rate: float = 0.5
    min_calls: int = 20
    window_seconds: float = 30.0
    cooldown_seconds: float = 15.0


class CircuitBreaker:
    def __init__(
        self, name: str, policy: BreakerPolicy, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.policy = policy
        self._clock = clock
        self.state: State = "closed"
        self._consecutive = 0
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._failures = 0  # failures among _outcomes (kept, not recounted per call)
        self._opened_at = 0.0
        self._probing = False
        self.transitions: list[State] = []

    def allow(self) -> bool:
        """May a call go out now? In half-open, only one probe at a time."""
        if self.state == "open":
            if self._clock() - self._opened_at < self.policy.cooldown_seconds:
                return False
            self._move("half_open")
        if self.state == "half_open":
            if self._probing:
                return False
            self._probing = True
        return True

    def release(self) -> None:
        """A call ended with no verdict on the provider's health (4xx, cancelled)."""
        self._probing = False

    def record(self, ok: bool) -> None:
        now = self._clock()
        if self.state == "half_open":
            self._probing = False
            self._move("closed" if ok else "open")
            return
        self._outcomes.append((now, ok))
        self._failures += not ok
        while self._outcomes and now - self._outcomes[0][0] > self.policy.window_seconds:
            self._failures -= not self._outcomes.popleft()[1]
        self._consecutive = 0 if ok else self._consecutive + 1
        rate_tripped = (
            len(self._outcomes) >= self.policy.min_calls
            and self._failures / len(self._outcomes) >= self.policy.failure_rate
        )
        if self.state == "closed" and (
            self._consecutive >= self.policy.consecutive_failures or rate_tripped
        ):
            self._move("open")

    def _move(self, state: State) -> None:
        if state == self.state:
            return
        self.state = state
        self.transitions.append(state)
        if state == "open":
            self._opened_at = self._clock()
        if state == "closed":
            self._consecutive = 0
            self._outcomes.clear()
            self._failures = 0
        log.warning("circuit_" + state, provider=self.name)
