"""CloudWatch PutMetricData: statistic sets aggregated in process, flushed on a timer.

One call per flush carries up to 1,000 datums, so 10,000 events cost one call
a minute, not 10,000. A failed flush puts its sets back for the next one and
is logged (``cloudwatch_publish_failed``); it never blocks work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import structlog

from worker.aws import aws_call, aws_client
from worker.errors import WorkerError
from worker.observability.metrics import Metrics

__all__ = ["MAX_DATUMS", "CloudWatchPublisher"]

MAX_DATUMS = 1000
log = structlog.get_logger("worker.cloudwatch")
Sampler = Callable[[], Awaitable[None]]


class CloudWatchPublisher:
    def __init__(
        self,
        metrics: Metrics,
        *,
        namespace: str,
        endpoint: str | None,
        region: str,
        interval: float = 60.0,
        sample: Sampler | None = None,
    ) -> None:
        self._metrics = metrics
        self._namespace = namespace
        self._endpoint = endpoint
        self._region = region
        self._interval = interval
        self._sample = sample
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self.calls = 0
        self.datums = 0

    async def open(self) -> None:
        self._stack = contextlib.AsyncExitStack()
        self._client = await self._stack.enter_async_context(
            aws_client("cloudwatch", self._endpoint, self._region, pool=4)
        )

    async def close(self) -> None:
        await self.flush()
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def _put(self, datums: list[dict[str, Any]]) -> None:
        client = self._client
        await aws_call(
            "PutMetricData",
            lambda: client.put_metric_data(Namespace=self._namespace, MetricData=datums),
        )

    async def flush(self) -> int:
        """Send what accumulated; return the number of datums sent."""
        if self._sample is not None:
            try:
                await self._sample()
            except WorkerError as exc:
                log.warning("metrics_sample_failed", error=str(exc))
        pending = self._metrics.drain()
        if not pending or self._client is None:
            if pending:
                self._metrics.restore(pending)
            return 0
        now = datetime.now(UTC)
        items = list(pending.items())
        sent = 0
        for start in range(0, len(items), MAX_DATUMS):
            chunk = items[start : start + MAX_DATUMS]
            datums = [
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
                    "Timestamp": now,
                    "Unit": unit,
                    "StatisticValues": {
                        "SampleCount": s.count,
                        "Sum": s.total,
                        "Minimum": s.low,
                        "Maximum": s.high,
                    },
                }
                for (name, dims, unit), s in chunk
            ]
            try:
                await self._put(datums)
            except WorkerError as exc:
                self._metrics.restore(dict(items[start:]))
                log.warning("cloudwatch_publish_failed", error=str(exc), datums=len(items) - start)
                return sent
            self.calls += 1
            sent += len(datums)
        self.datums += sent
        return sent
