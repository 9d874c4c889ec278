"""Spend control for a worker process: the budget ledger and the A/B variants, checked
at start-up (a variant's prompt file must exist)."""

from __future__ import annotations

from handlers.base import load_prompt
from worker.config import SpendSettings
from worker.errors import ConfigError
from worker.observability.metrics import Metrics
from worker.spend.alerts import Alerts
from worker.spend.ledger import SpendLedger
from worker.spend.variants import Variants
from worker.store import BudgetTable, Store

__all__ = ["build_ledger", "build_variants"]


async def build_ledger(settings: SpendSettings, store: Store, metrics: Metrics) -> SpendLedger:
    """The ledger with the budgets read once; its ``run`` keeps them fresh."""
    table = BudgetTable(store)
    webhook = settings.alert_webhook_url
    alerts = Alerts(table, metrics, webhook.get_secret_value() if webhook else None)
    ledger = SpendLedger(table, settings, alerts, metrics)
    await ledger.refresh()
    return ledger


def build_variants(settings: SpendSettings) -> Variants:
    """FLEET_VARIANTS, with every prompt version a variant names found on disk."""
    variants = Variants(settings.variants)
    for intent, version in sorted(variants.prompts()):
        try:
            load_prompt(f"{intent}.{version}")
        except (FileNotFoundError, OSError) as exc:
            raise ConfigError(
                f"FLEET_VARIANTS: {intent} variant prompt {version!r} has no file "
                f"handlers/prompts/{intent}.{version}.md"
            ) from exc
    return variants
