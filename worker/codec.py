"""JSON on the hot path: orjson (a fraction of json's CPU on a prompt or an SQS
reply), and json for what orjson refuses (a lone surrogate, which user text may carry
and json escapes; a key that is not a string), so nothing json took is refused."""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["dumps", "loads"]


def dumps(value: Any) -> bytes:
    """``value`` as JSON bytes."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()


def loads(raw: bytes) -> Any:
    """JSON bytes as a value (``ValueError`` when they are not JSON)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)
