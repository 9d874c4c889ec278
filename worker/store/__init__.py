"""PostgreSQL: migrations, records and the repository."""

from worker.store.cost_buffer import CostBuffer
from worker.store.migrate import available_migrations, migrate
from worker.store.records import CallRecord, Claim, DeadLetter, WorkflowRef
from worker.store.repository import Store
from worker.store.sends import Delivery, ScheduledSend, SendLedger

__all__ = [
    "CallRecord",
    "Claim",
    "CostBuffer",
    "DeadLetter",
    "Delivery",
    "ScheduledSend",
    "SendLedger",
    "Store",
    "WorkflowRef",
    "available_migrations",
    "migrate",
]
