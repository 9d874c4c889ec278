"""Per-model list prices (USD per 1M tokens) and the cost of one call.

Input, output and cached-input prices differ; the table's version string is
stored with every cost row so an analyst knows which table priced it.
``FLEET_PRICES`` overrides or adds entries, e.g.
``{"azure:gpt-4o": [2.75, 11.0, 1.375]}``; the version then says so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["PRICES", "PRICE_VERSION", "Price", "PriceTable", "cost_usd", "price_for"]

PRICE_VERSION = "list-2026-11"
_MILLION = Decimal(1_000_000)
_QUANTUM = Decimal("0.00000001")


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
    ("azure", "gpt-4.1-mini"): _p("0.40", "1.60", "0.10"),
    ("azure", "gpt-4-turbo"): _p("11.00", "33.00", "11.00"),
    ("azure", "gpt-35-turbo"): _p("0.50", "1.50", "0.50"),
}


class PriceTable:
    """The list prices plus any overrides from settings."""

    def __init__(self, overrides: Mapping[str, Sequence[float]] | None = None) -> None:
        self.prices = dict(PRICES)
        self.version = PRICE_VERSION
        if overrides:
            for name, values in overrides.items():
                provider, _, model = name.partition(":")
                if not model or len(values) not in (2, 3):
                    raise ValueError(
                        f"price override {name!r}: want 'provider:model': [input, output, cached]"
                    )
                inp, out = Decimal(str(values[0])), Decimal(str(values[1]))
                cached = Decimal(str(values[2])) if len(values) == 3 else inp
                self.prices[(provider, model)] = Price(inp, out, cached)
            digest = hashlib.sha1(
                json.dumps(overrides, sort_keys=True).encode(), usedforsecurity=False
            ).hexdigest()[:8]
            self.version = f"{PRICE_VERSION}+{digest}"

    def price(self, provider: str, model: str) -> Price | None:
        """The price of ``model``, also for dated snapshots like ``gpt-4o-2024-08-06``."""
        if (provider, model) in self.prices:
            return self.prices[(provider, model)]
        candidates = [m for (p, m) in self.prices if p == provider and model.startswith(m + "-")]
        return self.prices[(provider, max(candidates, key=len))] if candidates else None

    def cost(
        self, provider: str, model: str, prompt: int, completion: int, cached: int = 0
    ) -> Decimal:
        """Cost of one call; an unknown model costs 0 (the caller logs it)."""
        price = self.price(provider, model)
        if price is None:
            return Decimal(0)
        fresh = max(0, prompt - cached)
        total = fresh * price.input + cached * price.cached_input + completion * price.output
        return (total / _MILLION).quantize(_QUANTUM)


_DEFAULT = PriceTable()


def price_for(provider: str, model: str) -> Price | None:
    return _DEFAULT.price(provider, model)


def cost_usd(provider: str, model: str, prompt: int, completion: int, cached: int = 0) -> Decimal:
    return _DEFAULT.cost(provider, model, prompt, completion, cached)
