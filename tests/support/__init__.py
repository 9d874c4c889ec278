"""What tests share, imported from here and never from another test module."""

from tests.support.cli import FLEET, SHUTDOWN_MARGIN, LoggedProcess, dlq_json, env_for, fleet
from tests.support.console import OPERATOR, TOKENS, VIEWER, login_nonce, sign_in
from tests.support.db import query
from tests.support.web import serving
from tests.support.workers import (
    API_KEY,
    Factory,
    dead_letter,
    dlq_messages,
    drain,
    envelope,
    provider_settings,
    queue_for,
    run_until,
    send_bodies,
)

__all__ = [
    "API_KEY",
    "FLEET",
    "OPERATOR",
    "SHUTDOWN_MARGIN",
    "TOKENS",
    "VIEWER",
    "Factory",
    "LoggedProcess",
    "dead_letter",
    "dlq_json",
    "dlq_messages",
    "drain",
    "env_for",
    "envelope",
    "fleet",
    "login_nonce",
    "provider_settings",
    "query",
    "queue_for",
    "run_until",
    "send_bodies",
    "serving",
    "sign_in",
]
