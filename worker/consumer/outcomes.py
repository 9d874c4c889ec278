"""The vocabulary of a message's fate: outcomes, the work in hand, dead-letter rows.

One word per outcome, the same in logs, metrics, ``FleetStats`` and the docs:

completed      result and costs saved, message deleted
duplicate      the workflow was completed already: deleted without running
held           another worker holds the lease: hidden until the lease ends
retried        failure recorded, message visible again after the backoff
dead_lettered  failure recorded, message on the DLQ (permanent, or out of receives)
malformed      not a message we can serve: dead-letter row, message on the DLQ
postponed      not due yet (a send slot): a delayed copy replaces the message
requeued       fairness: a delayed copy goes to the back of the lane
released       shutdown overtook the handler: visible again at once
unsaved        the verdict could not be made durable (Postgres or SQS refused):
               nothing acknowledged, the message comes back later
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from handlers import Handler
from worker.contract import Envelope, Intent
from worker.errors import WorkerError
from worker.providers import Arm, LLMSession
from worker.queue import Received
from worker.store import DeadLetter, WorkflowRef

__all__ = ["Outcome", "Parsed", "Work", "dead_letter_row", "parent_of", "reason_of"]

Outcome = Literal[
    "completed",
    "duplicate",
    "held",
    "retried",
    "dead_lettered",
    "malformed",
    "postponed",
    "requeued",
    "released",
    "unsaved",
]


@dataclass(frozen=True, slots=True)
class Parsed:
    """A decoded message whose handler is known, not yet claimed."""

    message: Received
    envelope: Envelope
    ref: WorkflowRef
    handler: Handler
    arm: Arm | None = None  # the A/B variant it runs (worker.spend.variants)


@dataclass(slots=True)
class Work:
    """A claimed message on its way through its handler."""

    message: Received
    envelope: Envelope
    ref: WorkflowRef
    handler: Handler
    session: LLMSession


def dead_letter_row(
    source_queue: str,
    message: Received,
    ref: WorkflowRef | None,
    error_class: Literal["malformed", "permanent", "exhausted"],
    exc: WorkerError,
    history: list[dict[str, Any]],
) -> DeadLetter:
    """Why a message leaves the work queue, as the dead_letters row records it."""
    return DeadLetter(
        message_id=message.identity,
        error_class=error_class,
        error_code=exc.code,
        error_message=str(exc),
        receive_count=message.receive_count,
        source_queue=source_queue,
        workflow=ref,
        history=history,
    )


def parent_of(intent: Intent) -> str | None:
    parent = intent.data.get("parentId")
    return str(parent) if parent else None


def reason_of(error_class: str, exc: WorkerError) -> dict[str, str]:
    return {"errorClass": error_class, "errorCode": exc.code, "errorMessage": str(exc)[:256]}
