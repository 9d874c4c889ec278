"""PostgreSQL: migrations, records and the repository."""

from worker.store.migrate import available_migrations, migrate
from worker.store.records import CallRecord, Claim, DeadLetter, WorkflowRef
from worker.store.repository import Store

__all__ = [
    "CallRecord",
    "Claim",
    "DeadLetter",
    "Store",
    "WorkflowRef",
    "available_migrations",
    "migrate",
]
