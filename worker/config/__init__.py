"""The one settings object, and the groups cut from it for each component."""

from worker.config.groups import (
    ConsumerSettings,
    OperationsSettings,
    ProviderSettings,
    QueueSettings,
    SendSettings,
)
from worker.config.loading import NOT_SETTINGS, load_settings, setting_name
from worker.config.settings import Settings
from worker.config.spend import Experiment, SpendSettings, VariantSpec

__all__ = [
    "NOT_SETTINGS",
    "ConsumerSettings",
    "Experiment",
    "OperationsSettings",
    "ProviderSettings",
    "QueueSettings",
    "SendSettings",
    "Settings",
    "SpendSettings",
    "VariantSpec",
    "load_settings",
    "setting_name",
]
