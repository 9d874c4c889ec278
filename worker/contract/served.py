"""What a handler serves from free-form ``data``: known fields normalized, the rest as context.

``served(intent_type, data)`` validates ``data`` with the type's model (the same
check the door runs) and returns a ``Served``: each known field under its one
name in our code, whatever spelling the producer used, and every other key as
``context``: labelled, bounded (``LIMITS``) and sanitized, ready for a prompt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from worker.contract.data import (
    DATA_MODELS,
    FIELDS,
    LIMITS,
    RECIPIENT_IDS,
    RECIPIENT_NAMES,
)
from worker.errors import MalformedMessage

__all__ = ["Recipient", "Served", "served"]

_SECRET = re.compile(r"(pass(word)?|secret|token|api[_-]?key|authori[sz]ation|cookie)", re.I)
_LABEL = re.compile(r"[^A-Za-z0-9_.\- ]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Recipient:
    """One campaign recipient: an id, and what the producer said about them."""

    id: str
    name: str | None = None
    details: dict[str, str] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        """The object form a child workflow carries."""
        out: dict[str, Any] = {"id": self.id}
        if self.name:
            out["name"] = self.name
        out.update(self.details)
        return out


@dataclass(frozen=True, slots=True)
class Served:
    """Known fields by name (normalized) and the other keys as bounded prompt context."""

    known: dict[str, Any]
    context: dict[str, str]

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.known.get(name)
        return default if value is None else str(value)

    def number(self, name: str, default: int) -> int:
        value = self.known.get(name)
        return default if value is None else int(value)

    def texts(self, name: str) -> list[str]:
        value = self.known.get(name)
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    def recipients(self) -> list[Recipient]:
        return list(self.known.get("recipients", []))


def served(intent_type: str, data: dict[str, Any]) -> Served:
    """Validate ``data`` for a producer type and normalize it (``MalformedMessage`` if not)."""
    from worker.contract.reasons import describe

    if getattr(data, "intent_type", None) != intent_type:  # not admitted as this type
        try:
            DATA_MODELS[intent_type].model_validate(data)
        except ValidationError as exc:
            raise MalformedMessage(describe(exc, "intent.data"), code="invalid_data") from exc
    known: dict[str, Any] = {}
    others: dict[str, Any] = {}
    spelled = {s: k for k in FIELDS[intent_type] for s in k.spellings}
    for key, value in data.items():
        owner = spelled.get(key)
        if owner is None or value is None or owner.name in known:
            if value is not None:
                others[key] = value
            continue
        known[owner.name] = _normal(owner.kind, value)
    return Served(known, bounded(others))


def _normal(kind: str, value: Any) -> Any:
    if kind == "goals":
        return "; ".join(map(str, value)) if isinstance(value, list) else str(value)
    if kind == "context":
        return _context_text(value)
    if kind == "recipients":
        return _recipients(value)
    if kind in ("text", "content", "short"):
        return str(value)
    return value


def _context_text(value: Any) -> str:
    """Context as text: a conversation becomes ``role: content`` lines."""
    if isinstance(value, list):
        lines = []
        for turn in value:
            if isinstance(turn, dict):
                who = turn.get("role") or turn.get("from") or turn.get("sender") or "message"
                said = next(
                    (turn[k] for k in ("content", "text", "message", "body") if k in turn), turn
                )
                lines.append(f"{_clean(str(who))[:40]}: {_render(said, LIMITS['turn'])}")
            else:
                lines.append(_clean(str(turn)))
        return "\n".join(lines)
    if isinstance(value, dict):
        return _render(value, LIMITS["text"])
    return str(value)


def _recipients(value: list[Any]) -> list[Recipient]:
    """Ids or objects, in order, each id once."""
    out: dict[str, Recipient] = {}
    for item in value:
        if isinstance(item, dict):
            ident = str(next(item[k] for k in RECIPIENT_IDS if item.get(k) is not None))
            name = next((str(item[k]) for k in RECIPIENT_NAMES if item.get(k)), None)
            rest = {k: v for k, v in item.items() if k not in RECIPIENT_IDS + RECIPIENT_NAMES}
            out.setdefault(ident, Recipient(ident, name, bounded(rest, limit_keys=5)))
        else:
            out.setdefault(str(item), Recipient(str(item)))
    return list(out.values())


def bounded(others: dict[str, Any], limit_keys: int = LIMITS["extra_keys"]) -> dict[str, str]:
    """Other keys for a prompt: labels sanitized, secrets redacted, values capped."""
    out: dict[str, str] = {}
    keys = list(others)
    for key in keys[:limit_keys]:
        label = _LABEL.sub("_", key)[:64] or "_"
        out[label] = "[redacted]" if _SECRET.search(key) else _render(others[key])
    if len(keys) > limit_keys:
        names = ", ".join(_LABEL.sub("_", k)[:32] for k in keys[limit_keys : limit_keys + 10])
        out["_omitted"] = f"{len(keys) - limit_keys} more key(s): {names}"
    return out


def _render(value: Any, limit: int = LIMITS["extra_chars"]) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = _clean(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clean(text: str) -> str:
    return _CONTROL.sub(" ", text)
