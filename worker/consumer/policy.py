"""Pure decisions of the consumer: backoff delays and worker identity."""

from __future__ import annotations

import os
import random
import socket
import uuid

__all__ = ["retry_delay", "worker_id"]


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


def worker_id() -> str:
    """Who holds a lease: host, pid and a random suffix (pids repeat across hosts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
