"""The fleet's backoff, in one place. Pure, except ``retrying`` (a retry loop).

Two clocks use it:

- in process, a call to a provider or the gateway is tried again after the
  delays of a schedule (``FLEET_LLM_RETRY_DELAYS``, 1 s, 2 s, 5 s by default),
  jittered and stretched by the service's Retry-After: ``schedule`` and
  ``retrying``, for the errors of ``RETRY_SAME`` only;
- across receives, a message that failed goes back to SQS with a visibility
  timeout that doubles per receive up to a cap: ``retry_delay``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import TypeVar

from worker.errors import UpstreamRateLimited, WorkerError

__all__ = ["RETRY_SAME", "retry_delay", "retrying", "schedule"]

T = TypeVar("T")
RETRY_SAME = frozenset({"timeout", "network", "rate_limit", "server"})
"""Error codes worth another try at the same service."""


def schedule(
    delays: Sequence[float], jitter: float = 0.2, rng: random.Random | None = None
) -> Generator[float, BaseException | None, None]:
    """The waits: the schedule jittered, stretched by any Retry-After (sent the error)."""
    error = yield 0.0  # primed with next()
    for delay in delays:
        wait = delay * (rng or random).uniform(1 - jitter, 1 + jitter)
        if isinstance(error, UpstreamRateLimited) and error.retry_after is not None:
            wait = max(wait, error.retry_after)
        error = yield wait


def retrying(
    delays: Sequence[float],
    call: Callable[[], Awaitable[T]],
    *,
    on_backoff: Callable[[int, float, BaseException | None], None] | None = None,
) -> Callable[[], Awaitable[T]]:
    """``call`` tried again on the ``RETRY_SAME`` errors, after each of ``delays``
    (``schedule``); ``on_backoff(tries, wait, error)`` hears of each wait before it
    starts. A plain loop: ``backoff.on_exception`` built per call (a decorator, its
    wrappers and inspections) was a tenth of the worker's CPU per message."""

    async def attempts() -> T:
        waits = schedule(delays)
        next(waits)  # primed
        tries = 0
        while True:
            tries += 1
            try:
                return await call()
            except WorkerError as exc:
                if tries > len(delays) or getattr(exc, "code", "") not in RETRY_SAME:
                    raise
                wait = waits.send(exc)
                if on_backoff is not None:
                    on_backoff(tries, wait, exc)
                await asyncio.sleep(wait)

    return attempts


def retry_delay(
    attempt: int, *, base: float, cap: float, jitter: float = 0.1, rng: random.Random | None = None
) -> float:
    """Exponential backoff for ``attempt`` (1-based): base·2^(n-1), capped, ±jitter."""
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    raw = min(cap, base * 2.0 ** min(attempt - 1, 30))
    spread = raw * jitter
    value = raw + float((rng or random).uniform(-spread, spread))
    return max(0.0, min(cap, value))
