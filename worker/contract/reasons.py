"""Validation errors as one reason string, the same at the door and in the worker.

Pydantic reports a union's failure once per member, with locations such as
``constrained-str`` or ``function-after[...]``; a producer wants the field it
sent and what was expected. ``describe`` keeps the wire path, one line per
field, the specific error where there is one, else the types that would do.
"""

from __future__ import annotations

import re

from pydantic import ValidationError
from pydantic_core import ErrorDetails

__all__ = ["describe"]

_TAG = re.compile(
    r"^(constrained-\w+|function-\w+\[.*\]|list\[.*\]|dict\[.*\]|literal\[.*\]|json-or-python\[.*\]"
    r"|lax-or-strict\[.*\]|str|int|float|bool|RecipientObject|\w+Data|\w+Intent)$"
)
_PRODUCER_TAGS = {
    "content_planning",
    "message_generation",
    "content_validation",
    "campaign_execution",
}
_WORDS = {
    "string_type": "text",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "a list",
}
LIMIT = 5


def _path(loc: tuple[int | str, ...]) -> tuple[str, ...]:
    kept: list[str] = []
    for index, part in enumerate(loc):
        if isinstance(part, int):
            kept.append(str(part))
        elif _TAG.match(part) or (part in _PRODUCER_TAGS and index <= 1):
            continue
        else:
            kept.append(part)
    return tuple(kept)


def describe(exc: ValidationError, prefix: str = "intent") -> str:
    """``prefix.path: reason; ...`` for at most five fields, then how many more."""
    groups: dict[tuple[str, ...], list[ErrorDetails]] = {}
    for err in exc.errors():
        path = _path(err["loc"])
        field = (err.get("ctx") or {}).get("field")
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            field = "type"
        if field:
            path = (*path, str(field))
        groups.setdefault(path, []).append(err)
    parts = []
    for path, errs in list(groups.items())[:LIMIT]:
        where = ".".join((prefix, *path)) if prefix else ".".join(path) or "body"
        parts.append(f"{where}: {_reason(errs)}")
    more = len(groups) - LIMIT
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _reason(errs: list[ErrorDetails]) -> str:
    for err in errs:
        ctx = err.get("ctx") or {}
        if err["type"] == "union_tag_invalid":
            expected = str(ctx.get("expected_tags", "")).replace("'", "")
            return f"unknown intent type {ctx.get('tag')!r}: expected one of {expected}"
        if err["type"] == "union_tag_not_found":
            return "Field required"
    specific = [e["msg"] for e in errs if e["type"] not in _WORDS]
    if specific:
        return "; ".join(dict.fromkeys(specific))
    wanted = list(dict.fromkeys(_WORDS[e["type"]] for e in errs))
    return "expected " + " or ".join(wanted)
