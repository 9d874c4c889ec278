"""MessageGroupId and MessageDeduplicationId: what each message the fleet sends carries.

One setting, ``FLEET_MESSAGE_GROUP``, picks a message's group from its intent:

user          the intent's ``userId`` (the default)
campaign      ``data.campaignId`` (else the user)
data:<key>    ``data.<key>`` (else the user)
one           every message in one group (a FIFO fleet then runs one at a time)
none          no group (standard queues only: no SQS fair-queue tenant key)

On a FIFO queue the group orders and locks (SQS hands out a group's next message only
once the one before it is deleted) and the deduplication id is the workflow id, so a
producer's retry within SQS's five-minute window is dropped by SQS itself. Copies the
fleet makes (DLQ moves, replays) keep the message's group and get a fresh id. On a
standard queue the group is SQS's fair-queue tenant key; it never carries a
deduplication id, and a standard queue takes ``DelaySeconds``, a FIFO one never does.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from worker.contract import Envelope

__all__ = [
    "DEFAULT_GROUP",
    "FIFO_SUFFIX",
    "Keys",
    "copy_group",
    "envelope_keys",
    "group_of",
    "is_fifo",
    "send_fields",
]

FIFO_SUFFIX = ".fifo"
DEFAULT_GROUP = "fleet"  # the group of a raw body whose user is unknown
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]")


def is_fifo(queue_name: str) -> bool:
    return queue_name.endswith(FIFO_SUFFIX)


@dataclass(frozen=True, slots=True)
class Keys:
    """A message's group (None: none) and, on a FIFO queue, its deduplication id
    (None: a fresh one)."""

    group: str | None = None
    dedup: str | None = None


def _clean(value: str) -> str:
    """SQS's alphabet for group and deduplication ids (punctuation included), ≤ 128."""
    return _NOT_ALLOWED.sub("_", value)[:128] or DEFAULT_GROUP


def group_of(envelope: Envelope, mode: str) -> str | None:
    """The group ``mode`` (``FLEET_MESSAGE_GROUP``) gives this envelope."""
    intent = envelope.intent
    if mode == "none":
        return None
    if mode == "one":
        return DEFAULT_GROUP
    key = "campaignId" if mode == "campaign" else mode.removeprefix("data:")
    value = intent.data.get(key) if mode != "user" else None
    chosen = str(value) if value not in (None, "") else intent.user_id
    return _clean(chosen) if chosen else DEFAULT_GROUP


def envelope_keys(envelope: Envelope, mode: str) -> Keys:
    return Keys(group_of(envelope, mode), str(envelope.workflow_id))


def copy_group(
    group_id: str | None, attributes: dict[str, dict[str, str]], mode: str
) -> str | None:
    """The group of a copy: the message's own, else its ``userId`` attribute."""
    if group_id:
        return group_id
    if mode == "none":
        return None
    user = attributes.get("userId", {}).get("StringValue")
    return _clean(user) if user and mode != "one" else DEFAULT_GROUP


def send_fields(keys: Keys, *, fifo: bool, delay: int = 0) -> dict[str, Any]:
    """The SendMessage (or batch entry) fields beyond body and attributes."""
    if not 0 <= delay <= 900:
        raise ValueError(f"DelaySeconds must be 0..900, got {delay}")
    if fifo:
        if delay:
            raise ValueError("a FIFO queue refuses per-message DelaySeconds")
        return {
            "MessageGroupId": keys.group or DEFAULT_GROUP,
            "MessageDeduplicationId": _clean(keys.dedup or uuid.uuid4().hex),
        }
    fields: dict[str, Any] = {"DelaySeconds": delay} if delay else {}
    if keys.group:
        fields["MessageGroupId"] = keys.group
    return fields
