"""Spend control: budgets reserved before each LLM call and settled after it, leased
fleet-wide in chunks (``worker.spend.ledger``); alerts once per threshold and period
(``worker.spend.alerts``); model and prompt A/B variants, sticky per user
(``worker.spend.variants``); budget periods in FLEET_BUDGET_TIMEZONE
(``worker.spend.periods``).

Import the modules themselves: this package imports nothing, so ``fleet costs`` and
``fleet budgets`` (which need only ``periods``) do not load the providers.
"""

__all__: list[str] = []
