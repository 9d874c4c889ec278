"""Per-model list prices (USD per 1M tokens) and the cost of one call.

Prices differ for input, output and cached input; the version string is
stored with every cost row so an analyst knows which table priced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["PRICES", "PRICE_VERSION", "Price", "cost_usd", "price_for"]

PRICE_VERSION = "list-2026-11"
_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Price:
    input: Decimal
    output: Decimal
    cached_input: Decimal


def _p(inp: str, out: str, cached: str) -> Price:
    return Price(Decimal(inp), Decimal(out), Decimal(cached))


PRICES: dict[tuple[str, str], Price] = {
    ("openai", "gpt-4o"): _p("2.50", "10.00", "1.25"),
    ("openai", "gpt-4o-mini"): _p("0.15", "0.60", "0.075"),
    ("openai", "gpt-4.1"): _p("2.00", "8.00", "0.50"),
    ("openai", "gpt-4.1-mini"): _p("0.40", "1.60", "0.10"),
    ("openai", "gpt-3.5-turbo"): _p("0.50", "1.50", "0.50"),
    ("openai", "gpt-4-turbo"): _p("10.00", "30.00", "10.00"),
    ("azure", "gpt-4o"): _p("2.50", "10.00", "1.25"),
    ("azure", "gpt-4o-mini"): _p("0.15", "0.60", "0.075"),
    ("azure", "gpt-4.1"): _p("2.00", "8.00", "0.50"),
    ("azure", "gpt-4-turbo"): _p("11.00", "33.00", "11.00"),
    ("azure", "gpt-35-turbo"): _p("0.50", "1.50", "0.50"),
}


def price_for(provider: str, model: str) -> Price | None:
    """The price of ``model``, also for dated snapshots like ``gpt-4o-2024-08-06``."""
    if (provider, model) in PRICES:
        return PRICES[(provider, model)]
    candidates = [m for (p, m) in PRICES if p == provider and model.startswith(m + "-")]
    return PRICES[(provider, max(candidates, key=len))] if candidates else None


def cost_usd(
    provider: str, model: str, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0
) -> Decimal:
    """Cost of one call; an unknown model costs 0 (and is logged by the caller)."""
    price = price_for(provider, model)
    if price is None:
        return Decimal(0)
    fresh = max(0, prompt_tokens - cached_tokens)
    total = (
        fresh * price.input + cached_tokens * price.cached_input + completion_tokens * price.output
    )
    return (total / _MILLION).quantize(Decimal("0.00000001"))
