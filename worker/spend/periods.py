"""Budget periods: a day or a month in FLEET_BUDGET_TIMEZONE. Pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["period_start", "seconds_to_reset"]


def _local(zone: str, now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(zone))


def period_start(period: str, zone: str, now: datetime | None = None) -> date:
    """The first day of the period ``now`` falls in, as a date in ``zone``."""
    today = _local(zone, now).date()
    return today if period == "day" else today.replace(day=1)


def seconds_to_reset(period: str, zone: str, now: datetime | None = None) -> float:
    """Seconds from ``now`` to the start of the next period (local midnight in ``zone``)."""
    local = _local(zone, now)
    start = period_start(period, zone, now)
    if period == "day":
        following = start + timedelta(days=1)
    else:
        following = (start + timedelta(days=32)).replace(day=1)
    reset = datetime.combine(following, time(0), tzinfo=ZoneInfo(zone))
    return max(0.0, (reset - local).total_seconds())
