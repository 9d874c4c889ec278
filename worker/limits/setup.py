"""The limiters a worker process runs with, from its settings (None when off)."""

from __future__ import annotations

from worker.config import ConsumerSettings, ProviderSettings
from worker.limits.provider import ProviderLimit, ProviderLimits
from worker.limits.users import UserLimits
from worker.store import Connects
from worker.store.limits import RateTable

__all__ = ["build_provider_limits", "build_user_limits", "provider_key"]


def provider_key(provider: str, settings: ProviderSettings) -> str:
    """Whose limit it is: OpenAI limits a model per organisation, Azure a deployment."""
    if provider == "azure":
        return f"azure:{settings.azure_openai_deployment or settings.azure_model}"
    return f"{provider}:{settings.model}"


def build_provider_limits(settings: ProviderSettings, db: Connects) -> ProviderLimits | None:
    if not settings.rate_limits:
        return None
    limits = {
        name: ProviderLimit(provider_key(name, settings), rpm, tpm, settings.rate_target)
        for name, (rpm, tpm) in settings.rate_limits.items()
    }
    return ProviderLimits(RateTable(db), limits)


def build_user_limits(settings: ConsumerSettings, db: Connects) -> UserLimits | None:
    if not settings.user_rate_limit:
        return None
    return UserLimits(
        RateTable(db), settings.user_rate_limit, settings.user_rate_window, settings.user_rate_burst
    )
