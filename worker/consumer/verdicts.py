"""What the decision says about a message: a verdict VALUE, and the one table that
maps a handler's exception to it. Pure; ``settle`` makes verdicts durable.

A handler's exception, first match in ``RULINGS`` (order matters: specific first):

exception              ruling     verdict      error recorded
TimeoutError           deadline   Retry        DeadlineExceeded (FLEET_WORKFLOW_TIMEOUT)
NotDue                 postpone   Postpone     -  (a send slot in the future)
OverBudget             over_budget  Postpone (hold: to the budget's reset or a re-check), or
                                  DeadLetter class ``permanent``, code ``over_budget``
                                  (the budget's action ``dead_letter``, or held longer than
                                  FLEET_BUDGET_HOLD_MAX since it was enqueued)
MalformedMessage       malformed  DeadLetter   itself, class ``malformed``
PermanentError         permanent  DeadLetter   itself, class ``permanent``
RetryableError         retry      Retry        itself
any other Exception    bug        Retry        RetryableError, code ``unknown``

``asyncio.CancelledError`` is not a verdict: shutdown overtook the handler and the
message is released (see ``settle.Settler.release``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from worker.consumer.outcomes import Work
from worker.errors import (
    DeadlineExceeded,
    MalformedMessage,
    NotDue,
    OverBudget,
    PermanentError,
    RetryableError,
    WorkerError,
)
from worker.queue import Received

__all__ = [
    "RULINGS",
    "DeadLetter",
    "Duplicate",
    "Held",
    "Postpone",
    "Retry",
    "Ruling",
    "Succeeded",
    "Unsaved",
    "Verdict",
    "error_of",
    "ruling_of",
]

Ruling = Literal["deadline", "postpone", "over_budget", "malformed", "permanent", "retry", "bug"]

RULINGS: tuple[tuple[type[Exception], Ruling], ...] = (
    (TimeoutError, "deadline"),
    (NotDue, "postpone"),
    (OverBudget, "over_budget"),
    (MalformedMessage, "malformed"),
    (PermanentError, "permanent"),
    (RetryableError, "retry"),
    (Exception, "bug"),
)


def ruling_of(exc: Exception) -> Ruling:
    """The first row of ``RULINGS`` the exception is an instance of."""
    for kind, ruling in RULINGS:
        if isinstance(exc, kind):
            return ruling
    return "bug"


def error_of(exc: Exception, ruling: Ruling, timeout: float) -> WorkerError:
    """The error a verdict records for ``exc`` (ours as it is; others translated)."""
    if ruling == "deadline":
        return DeadlineExceeded(f"workflow ran past FLEET_WORKFLOW_TIMEOUT ({timeout:g}s)")
    if ruling == "bug" or not isinstance(exc, WorkerError):
        return RetryableError(f"{type(exc).__name__}: {exc}", code="unknown")
    return exc


@dataclass(frozen=True, slots=True)
class Succeeded:
    """The handler returned: save the result and costs, then delete."""

    work: Work
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again after ``delay`` s; ``final``: no receive left, the DLQ takes it."""

    work: Work
    error: WorkerError
    delay: float
    final: bool


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """To the DLQ at once; ``work`` is None when the message never became a workflow."""

    message: Received
    work: Work | None
    error_class: Literal["malformed", "permanent"]
    error: WorkerError

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def reason(self) -> str:
        return str(self.error)


@dataclass(frozen=True, slots=True)
class Postpone:
    """Not due yet: run again in ``seconds``."""

    work: Work
    seconds: float


@dataclass(frozen=True, slots=True)
class Duplicate:
    """The workflow was completed before: delete without running."""

    message: Received


@dataclass(frozen=True, slots=True)
class Held:
    """Another worker holds the lease for ``seconds`` more."""

    message: Received
    seconds: float


@dataclass(frozen=True, slots=True)
class Unsaved:
    """The store could not be reached to claim: nothing was written; come back later."""

    message: Received


Verdict = Succeeded | Retry | DeadLetter | Postpone | Duplicate | Held | Unsaved
