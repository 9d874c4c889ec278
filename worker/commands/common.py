"""What every `fleet` subcommand shares: settings, consoles, error handling, durations."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Callable, Coroutine
from datetime import date, datetime
from decimal import Decimal
from functools import wraps
from typing import Any, TypeVar
from uuid import UUID

import click
from rich.console import Console

from worker.config import Settings, load_settings
from worker.errors import ConfigError, WorkerError
from worker.observability import configure_logging, configure_tracing
from worker.ops.shape import by_camel, camel, usd

__all__ = [
    "by_camel",
    "camel",
    "console",
    "emit_json",
    "errors",
    "friendly",
    "output_option",
    "parse_duration",
    "run_async",
    "settings_from_env",
    "usd",
]


def _console(stderr: bool) -> Console:
    """A terminal gets rich's layout; a pipe or a file gets lines that never wrap (ids and
    URLs stay whole for the next program), unless COLUMNS says otherwise."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty() or "COLUMNS" in os.environ:
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=100_000, soft_wrap=True)


console = _console(stderr=False)
errors = _console(stderr=True)
T = TypeVar("T")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def settings_from_env(**overrides: Any) -> Settings:
    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    configure_logging(settings.log_level, settings.log_format)
    configure_tracing()  # on when OTEL_EXPORTER_OTLP_ENDPOINT is set (docs/operations.md)
    return settings


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop where it is installed (Linux, macOS): its loop and transports cost
    about a fifth less CPU per message than asyncio's (docs/decisions.md)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def parse_duration(value: str | None, option: str) -> float | None:
    """``90s``, ``15m``, ``2h``, ``7d``, ``1h30m`` (or plain seconds) to seconds."""
    if value is None:
        return None
    text = value.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise click.BadParameter(
            f"{value!r} is not a duration like 90s, 15m, 2h or 7d", param_hint=option
        )
    return sum(float(n) * _UNITS[u] for n, u in parts)


def friendly(func: Callable[..., None]) -> Callable[..., None]:
    """Turn our errors into one clear line and a non-zero exit."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            func(*args, **kwargs)
        except ConfigError as exc:
            errors.print(f"[red]configuration error:[/] {exc}")
            sys.exit(2)
        except WorkerError as exc:
            errors.print(f"[red]error ({exc.code}):[/] {exc}")
            sys.exit(1)

    return wrapper


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def emit_json(value: object) -> None:
    """The one way a command prints JSON: to stdout, indented, one document, keys as
    given (camelCase), Decimals and times as plain strings, never wrapped or coloured."""
    sys.stdout.write(json.dumps(value, indent=2, default=_plain, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def output_option(
    *, legacy_json: bool = False
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``--output text|json`` (``-o``) on a command, passed to it as ``as_json``. With
    ``legacy_json`` the command's former ``--json`` flag keeps working, hidden."""

    def decorate(func: Callable[..., None]) -> Callable[..., None]:
        @wraps(func)
        def wrapper(*args: Any, output: str, json_flag: bool = False, **kwargs: Any) -> None:
            func(*args, as_json=output == "json" or json_flag, **kwargs)

        wrapped = click.option(
            "--output",
            "-o",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
            help="text for people, json for scripts (camelCase fields, money as strings).",
        )(wrapper)
        if legacy_json:
            wrapped = click.option("--json", "json_flag", is_flag=True, hidden=True)(wrapped)
        return wrapped

    return decorate
