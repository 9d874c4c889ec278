"""The consumer: pollers, in-flight set, heartbeat, dispatch, shutdown."""

from worker.consumer.fleet import Capacity, Fleet, FleetStats
from worker.consumer.heartbeat import Heartbeat
from worker.consumer.outcomes import Outcome
from worker.consumer.policy import retry_delay, worker_id
from worker.consumer.processor import Processor
from worker.consumer.runtime import build_llm, run_worker

__all__ = [
    "Capacity",
    "Fleet",
    "FleetStats",
    "Heartbeat",
    "Outcome",
    "Processor",
    "build_llm",
    "retry_delay",
    "run_worker",
    "worker_id",
]
