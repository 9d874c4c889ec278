"""The consumer: pollers, in-flight set, heartbeat, decide a verdict, settle it, shutdown."""

from worker.consumer.decide import Decider
from worker.consumer.fleet import Capacity, Fleet, FleetStats
from worker.consumer.heartbeat import Heartbeat
from worker.consumer.outcomes import Outcome
from worker.consumer.policy import retry_delay, worker_id
from worker.consumer.processor import Processor
from worker.consumer.runtime import build_llm, run_worker
from worker.consumer.settle import Settler
from worker.consumer.verdicts import Verdict

__all__ = [
    "Capacity",
    "Decider",
    "Fleet",
    "FleetStats",
    "Heartbeat",
    "Outcome",
    "Processor",
    "Settler",
    "Verdict",
    "build_llm",
    "retry_delay",
    "run_worker",
    "worker_id",
]
