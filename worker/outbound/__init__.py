"""Outbound HTTP shared by the providers and the sends: the JSON poster, retry
hints in response headers, the one translation table of outbound failures, and
the fleet's backoff (in-process retries and SQS visibility delays)."""

from worker.outbound.backoff import RETRY_SAME, retry_delay, retrying, schedule
from worker.outbound.headers import go_duration, retry_after_seconds
from worker.outbound.poster import JsonPoster, Reply, Send
from worker.outbound.translate import EXC_MAP, detail, status_error, translated

__all__ = [
    "EXC_MAP",
    "RETRY_SAME",
    "JsonPoster",
    "Reply",
    "Send",
    "detail",
    "go_duration",
    "retry_after_seconds",
    "retry_delay",
    "retrying",
    "schedule",
    "status_error",
    "translated",
]
