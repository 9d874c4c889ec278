"""Logging, configured once.

JSON lines through structlog; context (workflow id, trace id, intent type) is
bound with contextvars, and with tracing on every line inside a span carries
that span's ``trace_id`` and ``span_id``. The sanitizing processor runs last before rendering:
it drops values under secret-looking or content-bearing keys, masks anything
that looks like a bearer token or API key inside strings, and caps sizes.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import structlog

from worker.observability.tracing import log_trace_ids

__all__ = ["add_secrets", "configure_logging", "sanitize"]

REDACTED = "[redacted]"
MAX_STRING = 512
MAX_ITEMS = 20
_SECRET_KEYS = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|authorization|auth|credential|cookie|dsn|"
    r"database_url|prompt|content|messages|body|text)",
    re.IGNORECASE,
)
_ALLOWED_KEYS = frozenset({"content_type", "tokens", "prompt_tokens", "completion_tokens"})
_SECRET_VALUES = [
    re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)(postgres(?:ql)?://[^:/@\s]*:)[^@\s]+@"),
]
_known_secrets: set[str] = set()


def add_secrets(values: Iterable[str | None]) -> None:
    """Register configured secret values so they are masked wherever they appear."""
    _known_secrets.update(value for value in values if value and len(value) >= 4)


def _clean_string(value: str) -> str:
    for secret in _known_secrets:
        if secret in value:
            value = value.replace(secret, REDACTED)
    for pattern in _SECRET_VALUES:
        value = pattern.sub(
            lambda m: (m.group(1) + REDACTED + "@") if m.lastindex else REDACTED, value
        )
    if len(value) > MAX_STRING:
        value = value[:MAX_STRING] + f"…[{len(value) - MAX_STRING} more chars]"
    return value


def sanitize(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` safe to log: no secrets, no content, bounded size."""
    if depth > 4:
        return "[nested]"
    if isinstance(value, str):
        return _clean_string(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for index, (key, item) in enumerate(value.items()):
            if index >= MAX_ITEMS:
                out["…"] = f"{len(value) - MAX_ITEMS} more keys"
                break
            name = str(key)
            secret = _SECRET_KEYS.search(name) and name not in _ALLOWED_KEYS
            out[name] = REDACTED if secret else sanitize(item, depth + 1)
        return out
    if isinstance(value, list | tuple | set):
        items = [sanitize(item, depth + 1) for item in list(value)[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            items.append(f"…{len(value) - MAX_ITEMS} more")
        return items
    return value


def _sanitize_processor(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event = event_dict.pop("event", None)
    cleaned: MutableMapping[str, Any] = sanitize(dict(event_dict))
    if event is not None:
        cleaned["event"] = _clean_string(str(event))
    return cleaned


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now (tests and daemons swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Set up structlog (and stdlib logging underneath) once per process."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            log_trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _sanitize_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
