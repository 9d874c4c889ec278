"""Text and JSON PostgreSQL accepts (hostile input carries NUL bytes and lone surrogates)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from psycopg.types.json import Jsonb

__all__ = ["pg_json", "pg_jsonb", "pg_text"]


def pg_text(value: str, limit: int | None = None) -> str:
    """Text PostgreSQL accepts: no NUL bytes, no lone surrogates (hostile input has both)."""
    text = value.replace("\x00", "\\0").encode("utf-8", "replace").decode("utf-8")
    return text[:limit] if limit else text


def pg_json(value: Any) -> Any:
    """The same cleaning through a JSON value (jsonb rejects \\u0000 too)."""
    if isinstance(value, str):
        return pg_text(value)
    if isinstance(value, dict):
        return {pg_text(str(k)): pg_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [pg_json(v) for v in value]
    return value


def pg_jsonb(value: Any) -> Jsonb:
    """A jsonb parameter of ``value``, cleaned as ``pg_json`` would, serialised once: the
    walk through every string runs only when the text shows something to clean. orjson
    serialises (a fraction of json's CPU); it refuses lone surrogates and keys that are
    not strings, and those values take the walk."""
    try:
        text: str | None = orjson.dumps(value).decode()
    except TypeError:  # a lone surrogate, or a key that is not a string
        text = None
    if text is None or "\\u0000" in text:
        text = json.dumps(pg_json(value), ensure_ascii=False)
    return Jsonb(text, dumps=_as_is)


def _as_is(text: Any) -> str:
    return str(text)
