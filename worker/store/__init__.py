"""PostgreSQL: migrations, records and the repository."""

from worker.store.cost_buffer import CostBuffer
from worker.store.migrate import available_migrations, migrate
from worker.store.records import CallRecord, Claim, DeadLetter, WorkflowRef
from worker.store.repository import Store

__all__ = [
    "CallRecord",
    "Claim",
    "CostBuffer",
    "DeadLetter",
    "Store",
    "WorkflowRef",
    "available_migrations",
    "migrate",
]
