"""Operator tasks: enqueue, status, the DLQ workbench, costs, the live view, the supervisor.

Loaded on first use (module ``__getattr__``): every `fleet` command imports the output
helpers of ``worker.ops.shape``, and few need SQS or Postgres clients at start-up."""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.ops.enqueue import EnqueueLine, enqueue_envelopes, envelope_from_json, read_jsonl
    from worker.ops.status import StatusReport, collect_status, workflow_report

_HOMES = {
    "EnqueueLine": "worker.ops.enqueue",
    "enqueue_envelopes": "worker.ops.enqueue",
    "envelope_from_json": "worker.ops.enqueue",
    "read_jsonl": "worker.ops.enqueue",
    "StatusReport": "worker.ops.status",
    "collect_status": "worker.ops.status",
    "workflow_report": "worker.ops.status",
}

__all__ = [
    "EnqueueLine",
    "StatusReport",
    "collect_status",
    "enqueue_envelopes",
    "envelope_from_json",
    "read_jsonl",
    "workflow_report",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'worker.ops' has no attribute {name!r}")
    return getattr(import_module(home), name)
