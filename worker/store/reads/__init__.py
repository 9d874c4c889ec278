"""Read models: one named question per function, for the operator commands
(`fleet status`, `fleet costs`, `fleet top`, the DLQ workbench) and the dev stack's
demo and benchmark. No caller above the store writes SQL. (The one write an operator
command makes, the replay audit row, is ``worker.store.replays``.)"""

from worker.store.reads.costs import (
    COST_COLUMNS,
    COST_GROUPS,
    CostTotals,
    cost_breakdown,
    cost_page,
    cost_per_day,
    cost_totals,
)
from worker.store.reads.dlq import call_history, dead_letter_reasons, dead_letters_since
from worker.store.reads.live import Activity, recent_activity
from worker.store.reads.runs import RunOutcome, Timing, completed_count, run_outcome, timings
from worker.store.reads.status import (
    WorkflowDetail,
    cost_since,
    workflow_counts,
    workflow_detail,
)
from worker.store.reads.variants import variant_breakdown

__all__ = [
    "COST_COLUMNS",
    "COST_GROUPS",
    "Activity",
    "CostTotals",
    "RunOutcome",
    "Timing",
    "WorkflowDetail",
    "call_history",
    "completed_count",
    "cost_breakdown",
    "cost_page",
    "cost_per_day",
    "cost_since",
    "cost_totals",
    "dead_letter_reasons",
    "dead_letters_since",
    "recent_activity",
    "run_outcome",
    "timings",
    "variant_breakdown",
    "workflow_counts",
    "workflow_detail",
]
