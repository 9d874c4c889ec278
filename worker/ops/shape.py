"""The one shape of operator JSON: camelCase names (the contract's), money as strings.

Money is a plain decimal string with eight places (``"0.00001250"``), the
precision of ``llm_calls.cost_usd``: never ``1.25e-05``, never a float's noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

__all__ = ["by_camel", "camel", "usd"]

_PLACES = Decimal("0.00000001")  # llm_calls.cost_usd is numeric(14, 8)


def usd(value: Decimal | float | str | None) -> str:
    """An amount of dollars as a plain decimal string, eight places."""
    amount = Decimal(str(value if value is not None else 0))
    return f"{amount.quantize(_PLACES):f}"


def camel(name: str) -> str:
    """``cost_usd`` -> ``costUsd``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def by_camel(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row with camelCase keys; money (``usd`` or ``*_usd``) as ``usd`` strings."""
    return {camel(k): usd(v) if k.endswith("usd") else v for k, v in row.items()}
