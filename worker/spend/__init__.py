"""Spend control: budgets reserved before each LLM call and settled after it, leased
fleet-wide in chunks (``ledger``); alerts once per threshold and period (``alerts``);
model and prompt A/B variants, sticky per user (``variants``); budget periods in
FLEET_BUDGET_TIMEZONE (``periods``)."""

from worker.spend.alerts import Alerts, alert_text
from worker.spend.ledger import SpendLedger, SpendTicket, budget_intent
from worker.spend.periods import period_start, seconds_to_reset
from worker.spend.variants import Variants, bucket

__all__ = [
    "Alerts",
    "SpendLedger",
    "SpendTicket",
    "Variants",
    "alert_text",
    "bucket",
    "budget_intent",
    "period_start",
    "seconds_to_reset",
]
