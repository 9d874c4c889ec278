"""How long `fleet dlq list|show|replay --dry-run` take on a DLQ of a given size.

    python -m devstack.dlq_bench 10 10000

For each size: fresh queues on the local stack (LocalStack unless
AWS_ENDPOINT_URL_SQS names an SQS; PostgreSQL from TEST_DATABASE_URL /
DATABASE_URL, else embedded), the DLQ filled directly with that many messages
(a tenth of them malformed), then each command run as an operator would, as a
subprocess, timed by the wall clock. `fleet --version` is timed too: the
interpreter's start-up that every command pays. Every listing must count the
whole DLQ and leave it visible again (checked, not assumed).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any

from devstack.demo import demo_settings, local_stack
from worker.aws import aws_client
from worker.config import Settings
from worker.ops.dlq import DlqWorkbench
from worker.queue import QueueClient, QueueSpec, create_queues
from worker.store import Store, migrate

__all__ = ["fill_dlq", "main", "scan_seconds", "time_commands"]

FLEET = [sys.executable, "-m", "worker.cli"]


async def fill_dlq(settings: Settings, count: int) -> None:
    """``count`` messages straight into the standard lane's DLQ, ten per call."""
    await create_queues(
        QueueSpec.from_settings(settings),
        endpoint=settings.sqs_endpoint_url,
        region=settings.aws_region,
    )
    async with QueueClient.from_settings(settings) as queue:
        url = queue.lanes["standard"].dlq_url
    gate = asyncio.Semaphore(16)

    async def batch(start: int, sqs: Any) -> None:
        entries = []
        for i in range(start, min(start + 10, count)):
            broken = i % 10 == 0
            body = f"not json {i}" if broken else json.dumps({"type": "content_planning", "n": i})
            error = "malformed" if broken else "exhausted"
            entries.append(
                {
                    "Id": str(i - start),
                    "MessageBody": body,
                    "MessageAttributes": {
                        "errorClass": {"DataType": "String", "StringValue": error},
                        "errorCode": {"DataType": "String", "StringValue": error},
                    },
                }
            )
        async with gate:
            await sqs.send_message_batch(QueueUrl=url, Entries=entries)

    async with aws_client("sqs", settings.sqs_endpoint_url, settings.aws_region) as sqs:
        await asyncio.gather(*(batch(start, sqs) for start in range(0, count, 10)))


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "AWS_"))}
    env.update(
        {
            "AWS_ENDPOINT_URL_SQS": str(settings.sqs_endpoint_url),
            "AWS_REGION": settings.aws_region,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "DATABASE_URL": settings.require_database_url(),
            "FLEET_QUEUE_NAME": settings.queue_name,
        }
    )
    return env


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([*FLEET, *args], env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"fleet {' '.join(args)} failed: {done.stderr[-2000:]}")
    return took, done.stdout


def time_commands(settings: Settings, count: int) -> dict[str, float]:
    """Seconds per command on a DLQ of ``count`` messages (listing checked whole)."""
    env = _env(settings)
    times = {"fleet --version": _timed(["--version"], env)[0]}
    took, out = _timed(["dlq", "list", "-o", "json", "--limit", str(count + 1)], env)
    rows = json.loads(out)
    if len(rows) != count:
        raise SystemExit(f"dlq list saw {len(rows)} of {count} messages")
    times["fleet dlq list -o json"] = took
    prefix = rows[len(rows) // 2]["dlqMessageId"][:8]
    times[f"fleet dlq show {prefix}"] = _timed(["dlq", "show", prefix, "-o", "json"], env)[0]
    took, out = _timed(["dlq", "replay", "--dry-run", "--force"], env)
    if f"{count} message(s) would be replayed" not in out:
        raise SystemExit(f"dlq replay --dry-run did not see {count}: {out[-300:]}")
    times["fleet dlq replay --dry-run --force"] = took
    took, out = _timed(["dlq", "list", "-o", "json", "--limit", str(count + 1)], env)
    if len(json.loads(out)) != count:
        raise SystemExit("the DLQ was not released after the commands above")
    return times


async def scan_seconds(settings: Settings) -> tuple[float, float, int]:
    """In process, no interpreter start-up: seconds to read the whole DLQ, seconds to
    release it, and how many messages were read."""
    async with (
        Store(settings.require_database_url()) as store,
        QueueClient.from_settings(settings) as queue,
    ):
        bench = DlqWorkbench(queue, store)
        started = time.perf_counter()
        entries = await bench.scan(hold_seconds=30)
        read = time.perf_counter() - started
        await bench.release(entries)
        return read, time.perf_counter() - started - read, len(entries)


def main(sizes: list[int]) -> None:
    with local_stack() as urls:
        asyncio.run(migrate(urls.database_url))
        for count in sizes:
            settings = demo_settings(urls, queue_name=f"dlqb-{uuid.uuid4().hex[:8]}")
            started = time.perf_counter()
            asyncio.run(fill_dlq(settings, count))
            print(f"{count} messages: DLQ filled in {time.perf_counter() - started:.1f} s")
            read, release, seen = asyncio.run(scan_seconds(settings))
            print(f"  in process: read {seen} in {read:.2f} s, released in {release:.2f} s")
            for name, seconds in time_commands(settings, count).items():
                print(f"  {name:<40} {seconds:6.2f} s")


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [10, 10_000])
