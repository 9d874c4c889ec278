"""One process's share of a provider's capacity, taken from the fleet in small leases.

The provider's capacity is treated as time: at the target rate a call costs
``max(60/RPM, tokens·60/TPM)`` seconds of it. The fleet hands provider time out
in order (``RateTable.lease``, one row per provider key): a process asks for a
lease of a few calls' worth (the calls waiting in it, at most ``LEASE_SECONDS``)
and gets an interval that starts when every earlier lease ends. Inside its lease
the process places its calls back to back, so the fleet as a whole never starts
calls faster than the target rate, and no row is locked per call.

Time the process leased but did not use is lost (never banked), so an idle
fleet cannot burst; a pause (a provider that says it has little left, a 429)
moves the fleet's next lease later and drops this process's current one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["LEASE_SECONDS", "Pacer"]

LEASE_SECONDS = 0.5  # the most provider time a process leases at once
Lease = Callable[[float], Awaitable[float]]
"""``lease(span) -> seconds until that span of provider time starts``."""


class Pacer:
    """Hands each call its start time inside leases of the fleet's provider time."""

    def __init__(self, lease: Lease, *, most: float = LEASE_SECONDS) -> None:
        self._lease = lease
        self._most = most
        self._cursor = 0.0  # monotonic: where the next call of this process may start
        self._end = 0.0  # monotonic: the end of the provider time this process holds
        self._waiting = 0
        self._lock: asyncio.Lock | None = None  # made in the running loop, on first use
        self.leases = 0

    async def slot(self, cost: float, after: float = 0.0) -> float:
        """Seconds from now until a call costing ``cost`` s of provider time may start
        (not sooner than ``after`` s from now: a call that lost its slot to a stall)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        self._waiting += 1
        try:
            async with self._lock:
                earliest = time.monotonic() + after
                self._cursor = max(self._cursor, earliest)
                if self._cursor + cost > self._end + 1e-9:
                    span = max(cost, min(self._most, cost * self._waiting))
                    starts_in = await self._lease(span + after)
                    start = time.monotonic() + starts_in
                    self.leases += 1
                    self._cursor, self._end = max(start, earliest), start + span + after
                at = self._cursor
                self._cursor += cost
        finally:
            self._waiting -= 1
        return max(0.0, at - time.monotonic())

    def hold(self, seconds: float) -> None:
        """Start nothing for ``seconds``: the current lease is given up."""
        self._cursor = max(self._cursor, time.monotonic() + seconds)
        self._end = 0.0
