"""PostgreSQL: the pool, migrations, the workflow ledger, the send ledger, the cache,
the worker registry, and read models (``worker.store.reads``).

All SQL of the fleet lives in this package; psycopg errors become ours in
``pool.py`` only.
"""

from worker.store.budgets import Budget, BudgetTable, BudgetUse
from worker.store.cache import CacheTable
from worker.store.cost_buffer import CostBuffer
from worker.store.limits import RateTable
from worker.store.migrate import available_migrations, migrate
from worker.store.pool import Conn, Connects, Pool, Row
from worker.store.records import CallRecord, Claim, DeadLetter, WorkflowRef
from worker.store.registry import WorkerRegistry
from worker.store.replays import Replay, record_replay
from worker.store.repository import Store
from worker.store.sends import Delivery, ScheduledSend, SendLedger
from worker.store.workflows import Workflows

__all__ = [
    "Budget",
    "BudgetTable",
    "BudgetUse",
    "CacheTable",
    "CallRecord",
    "Claim",
    "Conn",
    "Connects",
    "CostBuffer",
    "DeadLetter",
    "Delivery",
    "Pool",
    "RateTable",
    "Replay",
    "Row",
    "ScheduledSend",
    "SendLedger",
    "Store",
    "WorkerRegistry",
    "WorkflowRef",
    "Workflows",
    "available_migrations",
    "migrate",
    "record_replay",
]
