"""Operator tasks: enqueue, status (and, later, the DLQ workbench and costs)."""

from worker.ops.enqueue import EnqueueLine, enqueue_envelopes, envelope_from_json, read_jsonl
from worker.ops.status import StatusReport, collect_status, workflow_report

__all__ = [
    "EnqueueLine",
    "StatusReport",
    "collect_status",
    "enqueue_envelopes",
    "envelope_from_json",
    "read_jsonl",
    "workflow_report",
]
