"""Rate control: provider rate limits spaced fleet-wide, and per-user workflow limits.

``ProviderLimits`` paces each LLM attempt (``LLM(pace=…)``) and reads the providers'
``x-ratelimit-*`` headers; ``UserLimits`` delays a user's workflows over the limit.
Their shared state is in PostgreSQL (``worker.store.limits``, migration 0013).
"""

from worker.limits.pacer import LEASE_SECONDS, Pacer
from worker.limits.provider import ProviderLimit, ProviderLimits, estimated_tokens
from worker.limits.reports import RateReport, read_report
from worker.limits.setup import build_provider_limits, build_user_limits
from worker.limits.users import UserLimits

__all__ = [
    "LEASE_SECONDS",
    "Pacer",
    "ProviderLimit",
    "ProviderLimits",
    "RateReport",
    "UserLimits",
    "build_provider_limits",
    "build_user_limits",
    "estimated_tokens",
    "read_report",
]
