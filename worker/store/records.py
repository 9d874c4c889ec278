"""Plain records the store reads and writes (no database code here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

__all__ = ["CallRecord", "Claim", "DeadLetter", "WorkflowRef"]


@dataclass(frozen=True, slots=True)
class WorkflowRef:
    """Who a workflow is, as far as bookkeeping needs to know."""

    id: str
    type: str
    user_id: str
    priority: str
    trace_id: str
    parent_id: str | None = None
    variant: str | None = None  # the A/B variant the workflow runs (worker.spend.variants)


@dataclass(frozen=True, slots=True)
class Claim:
    """The result of trying to take a workflow's lease."""

    outcome: Literal["claimed", "completed", "held"]
    attempts: int = 0
    seconds_left: float = 0.0


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One LLM call attempt: the cost row (DESIGN.md, Costs)."""

    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    usage_source: Literal["api", "estimated", "none"]
    cost_usd: Decimal
    price_version: str
    duration_ms: int
    attempt: int
    outcome: str
    error_code: str | None = None
    cache_hit: bool = False
    repair: bool = False  # the structured-output repair round's call


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why a message left the work queue."""

    message_id: str
    error_class: Literal["malformed", "permanent", "exhausted"]
    error_code: str
    error_message: str
    receive_count: int
    source_queue: str
    workflow: WorkflowRef | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
