"""The rules a FIFO fleet (a queue name ending in ``.fifo``) adds to the settings."""

from __future__ import annotations

from typing import Any

__all__ = ["fifo_rules"]


def fifo_rules(settings: Any) -> list[tuple[bool, str]]:
    """(holds, message naming the setting) for each FIFO rule; none on a standard fleet."""
    if not settings.queue_name.endswith(".fifo"):
        return []
    visibility, interval = settings.visibility_timeout, settings.heartbeat_interval
    return [
        (
            settings.message_group != "none",
            "FLEET_MESSAGE_GROUP=none: a FIFO queue (FLEET_QUEUE_NAME ends in .fifo) needs "
            "a group; use one, user, campaign or data:<key>",
        ),
        (
            settings.priority_lanes,
            "FLEET_PRIORITY_LANES=false: a FIFO fleet needs its priority lane, the standard "
            "queue its sends travel on (docs/fifo.md)",
        ),
        (
            visibility >= 2 * interval + 2,
            f"FLEET_VISIBILITY_TIMEOUT ({visibility}) must be at least twice "
            f"FLEET_HEARTBEAT_INTERVAL ({interval:g}) + 2 on a FIFO fleet (a group's waiting "
            "messages are extended a heartbeat shorter than the running one)",
        ),
    ]
