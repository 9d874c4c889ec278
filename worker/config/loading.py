"""Reading the settings: ``load_settings`` turns pydantic's errors into one
``ConfigError`` naming each variable, and refuses ``FLEET_*`` names no setting reads."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from typing import Any

from pydantic import AliasChoices, ValidationError

from worker.config.settings import Settings
from worker.errors import ConfigError

__all__ = ["NOT_SETTINGS", "load_settings", "setting_name", "unknown_names"]

# FLEET_* names read outside the settings: the supervisor's child index, and knobs of
# the dev stack and the test suite (never read by a production worker).
NOT_SETTINGS = frozenset(
    {
        "FLEET_WORKER_INDEX",
        "FLEET_LOCALSTACK_PYTHON",
        "FLEET_FAULT_SIZE",
        "FLEET_FAULT_OUTAGE",
        "FLEET_FAULT_REPORT",
        "FLEET_FAULT_RUN_SIZE",
        "FLEET_CAMPAIGN_SIZE",
        "FLEET_REQUIRE_BROWSER",  # the console's browser tests fail instead of skipping
        "FLEET_CONSOLE_SCREENSHOTS",  # where those tests save page screenshots
    }
)


def setting_name(field: str) -> str:
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"FLEET_{field.upper()}"


def load_settings(**overrides: Any) -> Settings:
    """Read and check the settings, turning pydantic's errors into ConfigError."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{setting_name(str(err['loc'][0]))}: {err['msg']}"
            if err["loc"]
            else str(err["msg"]).removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc
    unknown = unknown_names(os.environ)
    if unknown:
        raise ConfigError(unknown)
    return settings


def unknown_names(environ: Mapping[str, str]) -> str | None:
    """A ``FLEET_*`` variable that no setting reads is a typo until proven otherwise."""
    known = {setting_name(field) for field in Settings.model_fields} | NOT_SETTINGS
    wrong = sorted(name for name in environ if name.startswith("FLEET_") and name not in known)
    if not wrong:
        return None
    hints = []
    for name in wrong:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hints.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return "unknown setting(s): " + ", ".join(hints) + " (see docs/configuration.md)"
