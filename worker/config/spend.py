"""The spend-control knobs (budgets, alerts, A/B variants), mixed into ``Settings``
(one settings object; this module keeps settings.py under its size limit), and the
``SpendSettings`` group view the spend ledger receives.

``FLEET_VARIANTS`` is a JSON object, per intent type an experiment::

    {"message_generation": {"experiment": "mg-2026-12",
                            "variants": {"control": {"share": 50},
                                         "mini": {"share": 50, "model": "gpt-4.1-mini",
                                                  "provider": "openai", "prompt": "v2"}}}}
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

__all__ = ["Experiment", "SpendKnobs", "SpendSettings", "VariantSpec"]

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class VariantSpec(BaseModel):
    """One arm: its traffic share (percent) and what it changes (nothing: the control)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    share: float = Field(gt=0, le=100)
    model: str | None = None
    provider: Literal["azure", "openai"] | None = None
    prompt: str | None = Field(None, pattern=r"^[a-z0-9_-]{1,32}$")


class Experiment(BaseModel):
    """The variants of one intent type; shares add up to 100."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    experiment: str = Field(pattern=_NAME.pattern)
    variants: dict[str, VariantSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _shares(self) -> Experiment:
        bad = [name for name in self.variants if not _NAME.match(name)]
        if bad:
            raise ValueError(f"variant names are letters, digits, _ . - (not {bad})")
        total = sum(spec.share for spec in self.variants.values())
        if abs(total - 100) > 0.01:
            raise ValueError(f"experiment {self.experiment!r}: shares add up to {total:g}, not 100")
        return self


Variants = Annotated[dict[str, Experiment] | None, NoDecode]


class SpendKnobs(BaseModel):
    """Fields of ``Settings`` (FLEET_ prefix): budgets, alerts, variants."""

    budget_timezone: str = Field("UTC", description="time zone of budget days and months")
    budget_lease_usd: float = Field(0.5, gt=0, description="largest allowance leased at once")
    budget_flush_seconds: float = Field(2.0, gt=0, description="settle spend, return leases")
    budget_refresh_seconds: float = Field(15.0, gt=0, description="re-read the budgets table")
    budget_hold_seconds: int = Field(900, ge=1, le=900, description="re-check held work")
    budget_hold_max: float = Field(345_600.0, gt=0, description="then over_budget to the DLQ")
    alert_webhook_url: SecretStr | None = Field(None, description="Slack-style webhook")
    variants: Variants = None

    @field_validator("budget_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (want an IANA name)") from exc
        return value

    @field_validator("variants", mode="before")
    @classmethod
    def _json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) and value.strip() else value or None


class SpendSettings(BaseModel):
    """The spend ledger's view of the settings."""

    model_config = ConfigDict(frozen=True)

    budget_timezone: str
    budget_lease_usd: float
    budget_flush_seconds: float
    budget_refresh_seconds: float
    budget_hold_seconds: int
    budget_hold_max: float
    alert_webhook_url: SecretStr | None
    variants: dict[str, Experiment] | None
