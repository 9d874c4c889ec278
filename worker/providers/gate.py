"""The spend hook of a provider call, and the A/B arm a session runs.

Before each upstream call ``LLMSession`` asks the ``SpendGate`` (``worker.spend``
implements it; None: no budgets) to reserve the call's estimated cost: the prompt's
tokens by the model's tokenizer at the input price plus the request's ``max_tokens`` at
the output price. The gate may refuse with ``OverBudget`` only while ``admit`` is True:
the session's first reservation, before anything of the workflow has run
(``Admission``: calls a handler makes concurrently wait for that first decision). After
the call the ticket is settled with the real cost (0 for a failed attempt).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from worker.errors import OverBudget
from worker.providers.base import ChatRequest
from worker.providers.prices import PriceTable
from worker.providers.tokens import count_messages

__all__ = [
    "Admission",
    "Arm",
    "CallAsk",
    "SpendGate",
    "Ticket",
    "arm_model",
    "arm_order",
    "estimate",
]


@dataclass(frozen=True, slots=True)
class Arm:
    """An A/B variant as the session applies it (None: keep the route's)."""

    name: str
    model: str | None = None
    provider: str | None = None
    prompt: str | None = None


@dataclass(frozen=True, slots=True)
class CallAsk:
    """One call about to be made, for the budgets that cover it."""

    provider: str
    intent: str
    user_id: str
    admit: bool  # may be refused: nothing of the workflow has run yet
    request: ChatRequest
    prices: PriceTable

    @property
    def model(self) -> str:
        return self.request.model

    def estimate(self) -> Decimal:
        """The most this call can cost (the tokenizer runs only when a budget asks)."""
        return estimate(self.prices, self.provider, self.request)


class Ticket(Protocol):
    def settle(self, cost: Decimal) -> None: ...


class SpendGate(Protocol):
    async def reserve(self, ask: CallAsk) -> Ticket: ...


def estimate(prices: PriceTable, provider: str, request: ChatRequest) -> Decimal:
    """The most this call can cost: the prompt as counted, plus every output token allowed."""
    prompt = count_messages(request.messages, request.model)
    return prices.cost(provider, request.model, prompt, request.max_tokens)


def arm_order(arm: Arm | None, names: list[str], force: str | None) -> list[str]:
    """The session's providers with the arm's provider first (``forceProvider`` wins)."""
    first = arm.provider if arm is not None and not force else None
    if first is None or first not in names:
        return names
    return [first, *(name for name in names if name != first)]


def arm_model(arm: Arm | None, provider: str, default: str) -> str:
    """The arm's model on its provider (on every provider when it names none)."""
    if arm is not None and arm.model and arm.provider in (None, provider):
        return arm.model
    return default


class Admission:
    """One workflow's admission: its first reservation may be refused, and decides.

    Calls made while that first reservation is pending (a campaign's recipients run
    concurrently) wait for it: refused, they raise the same ``OverBudget`` and none of
    them calls; admitted, they reserve as calls of a started workflow (never refused).
    A first reservation that fails otherwise (the database, a cancellation) decides
    nothing: the next call tries again.
    """

    def __init__(self) -> None:
        self._decided: asyncio.Future[bool] | None = None

    async def reserve(self, gate: SpendGate, ask: Callable[[bool], CallAsk]) -> Ticket:
        while (decided := self._decided) is not None:
            if await asyncio.shield(decided):  # raises the first's OverBudget
                return await gate.reserve(ask(False))
            if self._decided is decided:
                self._decided = None
        mine = self._decided = asyncio.get_running_loop().create_future()
        try:
            ticket = await gate.reserve(ask(True))
        except OverBudget as exc:
            mine.set_exception(exc)
            mine.exception()  # retrieved here; the waiters raise it too
            raise
        except BaseException:
            self._decided = None
            mine.set_result(False)
            raise
        mine.set_result(True)
        return ticket
