"""Who may use the console: tokens, sessions, roles and CSRF.

Tokens come from FLEET_CONSOLE_TOKENS as ``name:role:token,...`` (or
``name:role:sha256:<hex>`` so only the hash is ever stored). Only their SHA-256
is kept in memory and compared, in constant time, against the hash of what a
request presents. A person signs in once with the same token and gets a session
cookie (HttpOnly, SameSite=Strict, Secure off loopback) bound to a CSRF token
that every form POST must carry; the API takes ``Authorization: Bearer``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Literal

from worker.errors import ConfigError

__all__ = [
    "ROLES",
    "Principal",
    "Session",
    "SessionBook",
    "TokenBook",
    "digest",
    "parse_tokens",
    "same_secret",
]

Role = Literal["viewer", "operator"]
ROLES: tuple[Role, ...] = ("viewer", "operator")
_SETTING = "FLEET_CONSOLE_TOKENS"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role

    @property
    def may_operate(self) -> bool:
        return self.role == "operator"


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    hashed: str


class TokenBook:
    """The hashes of the configured tokens and whom each one names."""

    def __init__(self, entries: list[_Entry]) -> None:
        self._entries = entries

    def __len__(self) -> int:
        return len(self._entries)

    def check(self, token: str | None) -> Principal | None:
        if not token:
            return None
        presented = digest(token)
        found = None
        for entry in self._entries:  # no early exit: the time does not say which one matched
            if hmac.compare_digest(presented, entry.hashed):
                found = entry.principal
        return found


def parse_tokens(raw: str | None) -> TokenBook:
    """``name:role:token,...`` into a book of hashes; a bad entry names the setting."""
    if not raw or not raw.strip():
        raise ConfigError(f"{_SETTING} is not set: nobody could sign in to the console")
    entries: list[_Entry] = []
    for index, part in enumerate(p.strip() for p in raw.split(",") if p.strip()):
        name, sep1, rest = part.partition(":")
        role, sep2, secret = rest.partition(":")
        if not (sep1 and sep2 and name and secret):
            raise ConfigError(f"{_SETTING}: entry {index + 1} is not name:role:token")
        if role not in ROLES:
            raise ConfigError(
                f"{_SETTING}: entry {index + 1} ({name}) has role {role!r}; "
                "want viewer or operator"
            )
        if secret.startswith("sha256:"):
            hashed = secret.removeprefix("sha256:").lower()
            if len(hashed) != 64:
                raise ConfigError(f"{_SETTING}: entry {index + 1} ({name}) has a bad sha256")
        elif len(secret) < 16:
            raise ConfigError(
                f"{_SETTING}: entry {index + 1} ({name}) has a token under 16 characters"
            )
        else:
            hashed = digest(secret)
        entries.append(_Entry(Principal(name, role), hashed))
    return TokenBook(entries)


@dataclass(slots=True)
class Session:
    principal: Principal
    csrf: str
    expires: float


@dataclass(slots=True)
class SessionBook:
    """Signed-in people, by the hash of their cookie (the cookie itself is not kept)."""

    lifetime: float = 8 * 3600
    _sessions: dict[str, Session] = field(default_factory=dict)

    def open(self, principal: Principal) -> tuple[str, Session]:
        cookie = secrets.token_urlsafe(32)
        session = Session(principal, secrets.token_urlsafe(32), time.monotonic() + self.lifetime)
        self._sessions[digest(cookie)] = session
        return cookie, session

    def find(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        key = digest(cookie)
        session = self._sessions.get(key)
        if session is None:
            return None
        if session.expires < time.monotonic():
            del self._sessions[key]
            return None
        return session

    def close(self, cookie: str | None) -> None:
        if cookie:
            self._sessions.pop(digest(cookie), None)


def same_secret(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))
