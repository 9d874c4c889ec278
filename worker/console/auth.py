"""Who may use the console: tokens, sessions, roles and CSRF.

Tokens come from FLEET_CONSOLE_TOKENS as ``name:role:token,...`` (or
``name:role:sha256:<hex>`` so only the hash is ever stored). Only their SHA-256
is kept in memory and compared, in constant time, against the hash of what a
request presents. A person signs in once with the same token and gets a session
cookie (HttpOnly, SameSite=Strict, Secure off loopback) bound to a CSRF token
that every form POST must carry; the API takes ``Authorization: Bearer``. Sessions
live in PostgreSQL (``worker.store.sessions``), keyed by the cookie's hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from worker.errors import ConfigError
from worker.store import Connects
from worker.store.sessions import SessionRow, close_session, find_session, open_session

__all__ = [
    "ROLES",
    "SESSION_SECONDS",
    "Principal",
    "Session",
    "SessionBook",
    "TokenBook",
    "digest",
    "parse_tokens",
    "same_secret",
    "token_tag",
]

Role = Literal["viewer", "operator"]
ROLES: tuple[Role, ...] = ("viewer", "operator")
_SETTING = "FLEET_CONSOLE_TOKENS"
SESSION_SECONDS = 8 * 3600


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _tag(hashed: str) -> str:
    return digest(f"session:{hashed}")[:32]


def token_tag(token: str) -> str:
    """What a session keeps of the token it was opened with: a hash of its hash (so
    taking the token out of the settings, or rotating it, ends the session)."""
    return _tag(digest(token))


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

    def still(self, principal: Principal, tag: str) -> bool:
        """Whether the token that ``tag`` came from still names ``principal``."""
        found = False
        for entry in self._entries:
            if hmac.compare_digest(_tag(entry.hashed), tag) and entry.principal == principal:
                found = True
        return found

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
        raise ConfigError(
            f"{_SETTING} is not set: nobody could sign in to the console (set it to "
            "name:role:token,... with role viewer or operator and a token of 16+ random "
            "characters; see docs/console.md)"
        )
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


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    csrf: str
    expires: datetime


class SessionBook:
    """Signed-in people, kept in PostgreSQL (``console_sessions``) by the hash of their
    cookie, so that a restart or a second console process keeps them signed in. A
    session whose sign-in token was taken out or rotated, or now names someone else or
    another role, is refused."""

    def __init__(self, tokens: TokenBook, lifetime: float = SESSION_SECONDS) -> None:
        self._tokens = tokens
        self.lifetime = lifetime

    async def open(self, db: Connects, principal: Principal, token: str) -> tuple[str, Session]:
        """A session for ``principal``, who signed in with ``token``; return its cookie."""
        cookie = secrets.token_urlsafe(32)
        row = SessionRow(principal.name, principal.role, token_tag(token),
                         secrets.token_urlsafe(32), datetime.now(UTC))
        expires = await open_session(db, digest(cookie), row, self.lifetime)
        return cookie, Session(principal, row.csrf, expires)

    async def find(self, db: Connects, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        row = await find_session(db, digest(cookie))
        if row is None or row.role not in ROLES:
            return None
        principal = Principal(row.name, row.role)
        if not self._tokens.still(principal, row.token_tag):  # its token left the settings
            return None
        return Session(principal, row.csrf, row.expires_at)

    async def close(self, db: Connects, cookie: str | None) -> None:
        if cookie:
            await close_session(db, digest(cookie))


def same_secret(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))
