"""Per-user fairness: one user's flood cannot hold more than a share of the slots
while other users' messages are arriving too.

A user is capped at ``share * concurrency`` messages in hand only while some
other user has been seen within the window; alone, a user may use every slot
(work-conserving). A message over the cap is not started: the consumer puts a
delayed copy back on the queue (its receive count does not climb), so the
pollers reach the other users' messages behind it.
"""

from __future__ import annotations

import json
import time
from collections import Counter

from worker.queue import Received

__all__ = ["Fairness", "user_of"]


def user_of(message: Received) -> str:
    """The creator a message is for: its ``userId`` attribute, else a light body parse."""
    given = message.attributes.get("userId")
    if given:
        return given
    if len(message.body) > 65_536:  # a user id sits near the top; do not parse megabytes twice
        return ""
    try:
        body = json.loads(message.body)
    except (ValueError, RecursionError):  # hostile bodies are the processor's to reject
        return ""
    if not isinstance(body, dict):
        return ""
    intent = body.get("intent", body)
    user = intent.get("userId") if isinstance(intent, dict) else None
    return str(user) if isinstance(user, str) else ""


class Fairness:
    def __init__(self, concurrency: int, share: float, window: float = 10.0) -> None:
        self._share = share
        self.cap = max(1, int(concurrency * share))
        self.enabled = share < 1.0
        self._window = window
        self._in_hand: Counter[str] = Counter()
        self._seen: dict[str, float] = {}
        self.requeued = 0  # messages turned away (the fleet requeues them)

    def resize(self, concurrency: int) -> None:
        """The concurrency limit moved: the cap follows it."""
        self.cap = max(1, int(concurrency * self._share))

    def admit(self, user: str, *, force: bool = False) -> bool:
        """May this user's message start now? (Counts it in hand if so.) ``force``: yes,
        whatever the cap (a FIFO message on its last receive)."""
        now = time.monotonic()
        self._seen[user] = now
        over = self.enabled and self._in_hand[user] >= self.cap
        if not force and over and self._others_active(user, now):
            self.requeued += 1
            return False
        self._in_hand[user] += 1
        return True

    def done(self, user: str) -> None:
        self._in_hand[user] -= 1
        if self._in_hand[user] <= 0:
            del self._in_hand[user]

    def in_hand(self, user: str) -> int:
        return self._in_hand[user]

    def _others_active(self, user: str, now: float) -> bool:
        stale = [u for u, t in self._seen.items() if now - t > self._window]
        for name in stale:
            del self._seen[name]
        return any(u != user for u in self._seen) or any(u != user for u in self._in_hand)
