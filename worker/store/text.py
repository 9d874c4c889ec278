"""Text and JSON PostgreSQL accepts (hostile input carries NUL bytes and lone surrogates)."""

from __future__ import annotations

from typing import Any

__all__ = ["pg_json", "pg_text"]


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
