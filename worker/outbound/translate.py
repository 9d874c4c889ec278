"""How an outbound call fails, in our words: the one table.

A call that got no answer raises a third-party exception; ``translated`` maps
it through ``EXC_MAP`` (first match wins, so the narrower types come first),
as httpx's ``HTTPCORE_EXC_MAP`` does. A call that got an error status becomes
an error through ``status_error``:

    no answer within the limit   TimeoutError (asyncio, aiohttp)   UpstreamTimeout
    no HTTP answer               aiohttp.ClientError, OSError      UpstreamUnreachable
    429                          (Retry-After hint kept)           UpstreamRateLimited
    408, 5xx                                                       UpstreamUnavailable
    401, 403                                                       UpstreamRefused auth
    404                                                            UpstreamRefused not_found
    400, 409, 413, 422                                             UpstreamRefused validation
    any other status                                               UpstreamRefused unknown

Nothing above ``worker.outbound`` sees an aiohttp exception.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import aiohttp

from worker.errors import (
    RetryableError,
    UpstreamRateLimited,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnavailable,
    UpstreamUnreachable,
    WorkerError,
)
from worker.outbound.headers import retry_after_seconds

__all__ = ["EXC_MAP", "REFUSED", "detail", "status_error", "translated"]

EXC_MAP: tuple[tuple[type[BaseException], type[RetryableError]], ...] = (
    (TimeoutError, UpstreamTimeout),  # aiohttp's own timeouts are TimeoutErrors too
    (aiohttp.ClientError, UpstreamUnreachable),
    (OSError, UpstreamUnreachable),
)
REFUSED: Mapping[int, str] = {
    400: "validation",
    401: "auth",
    403: "auth",
    404: "not_found",
    409: "validation",
    413: "validation",
    422: "validation",
}


@contextmanager
def translated(service: str, time_limit: float) -> Iterator[None]:
    """Raise ours, ``from`` the original, for any exception of ``EXC_MAP``."""
    try:
        yield
    except tuple(kind for kind, _ in EXC_MAP) as exc:
        ours = next(error for kind, error in EXC_MAP if isinstance(exc, kind))
        if ours is UpstreamTimeout:
            raise UpstreamTimeout(f"{service}: timed out after {time_limit:g}s") from exc
        raise ours(f"{service}: {type(exc).__name__}") from exc


def detail(service: str, status: int, code: str = "", message: str = "") -> str:
    """``openai: HTTP 429 rate_limit_exceeded: Rate limit reached…``"""
    text = f"{service}: HTTP {status}" + (f" {code}" if code else "")
    return text + (f": {message}" if message else "")


def status_error(
    service: str, status: int, headers: Mapping[str, str], *, code: str = "", message: str = ""
) -> WorkerError:
    """The error for a non-2xx status; ``code`` and ``message`` are the body's, if any."""
    text = detail(service, status, code, message)
    if status == 429:
        return UpstreamRateLimited(text, retry_after=retry_after_seconds(headers))
    if status >= 500 or status == 408:
        return UpstreamUnavailable(text)
    return UpstreamRefused(text, code=REFUSED.get(status, "unknown"))
