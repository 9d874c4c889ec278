"""Which proxy an outbound connection takes: the standard environment variables."""

from __future__ import annotations

import urllib.parse
import urllib.request

__all__ = ["proxy_for"]


def proxy_for(url: str) -> str | None:
    """HTTPS_PROXY / HTTP_PROXY / NO_PROXY for ``url``, read once by the caller's client
    (aiohttp's ``trust_env`` reads them, and ~/.netrc, on every request: a third of the
    CPU of a provider call)."""
    parts = urllib.parse.urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)
