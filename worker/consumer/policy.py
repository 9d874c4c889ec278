"""Pure decisions of the consumer: backoff delays and worker identity."""

from __future__ import annotations

import os
import socket
import uuid

from worker.outbound.backoff import retry_delay  # the fleet's one backoff module

__all__ = ["retry_delay", "worker_id"]


def worker_id() -> str:
    """Who holds a lease: host, pid and a random suffix (pids repeat across hosts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
