"""`fleet bench`: throughput and cost of the fleet against the queue's own ceiling.

Scenarios (all on the local stack, queues pre-filled):

* ceiling   a bare aioboto3 loop: receive 10 + DeleteMessageBatch, same pollers;
* overhead  `fleet run` with an instant provider (latency 0), Postgres writes on,
            4 pollers like the bare loop, at the default 64 slots and at 128;
* seed      provider latency lognormal P50 1.2 s / P95 3.5 s / P99 8.2 s at
            concurrency 64, 256 and 512 (one process);
* scale     the overhead scenario (128 slots) with 1 and 2 processes;
* fifo      the same load on a standard and on a FIFO queue, back to back
            (``fifo_bench``): what per-user order costs in throughput.

Every scenario reports CPU seconds per 1,000 messages of its own processes;
that figure does not depend on the queue server's speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

from devstack.demo import DEMO_KEY, StackUrls, demo_settings
from devstack.fake_llm import FakeConfig, Latency
from devstack.fifo_bench import fifo_scenarios
from worker.aws import aws_client
from worker.config import Settings
from worker.contract import Envelope, Intent
from worker.queue import QueueClient, QueueSpec, create_queues
from worker.store import Store, migrate
from worker.store.reads import completed_count, timings

__all__ = ["Result", "run_bench"]

SEED_LATENCY = Latency(1200, 3500, 8200)


@dataclass
class Result:
    scenario: str
    messages: int
    seconds: float
    per_second: float
    cpu_seconds_per_1000: float
    extra: dict[str, Any] = field(default_factory=dict)


def machine_cpu(workers: set[int]) -> dict[str, float]:
    """CPU seconds so far by role: the worker processes, the queue server, Postgres (every
    postgres process on the machine, ended backends included through their postmaster),
    and this process (the bare loop or the producer, the fake LLM, the progress queries)."""
    used = {"workers": 0.0, "queue_server": 0.0, "postgres": 0.0}
    for p in psutil.process_iter():
        try:
            t = p.cpu_times()
            if p.pid in workers:
                used["workers"] += t.user + t.system
            elif p.name() == "postgres":
                used["postgres"] += t.user + t.system + t.children_user + t.children_system
            elif "localstack.runtime" in " ".join(p.cmdline()):
                used["queue_server"] += t.user + t.system
        except psutil.Error:
            continue
    used["bench_and_fakes"] = time.process_time()
    return used


class Window:
    """Rate and CPU between 5% and 95% done: start-up, imports and the last stragglers
    (the seed latency's tail runs past 20 s) are left out of the steady state."""

    def __init__(self, count: int) -> None:
        self._at = {q: max(1, int(count * q)) for q in (0.05, 0.95)}
        self._marks: dict[float, tuple[float, dict[str, float], int]] = {}

    def note(self, done: int, cpu: Callable[[], dict[str, float]]) -> None:
        """Mark the moments 5% and 95% are done (``cpu`` is read only then: it is costly)."""
        due = [q for q, t in self._at.items() if q not in self._marks and done >= t]
        if due:
            moment, counters = time.monotonic(), cpu()
            for q in due:
                self._marks[q] = (moment, counters, done)

    def rate_and_cpu(self, role: str) -> tuple[float, float]:
        """Messages/s, and CPU seconds per 1,000 messages of ``role``."""
        (t0, c0, n0), (t1, c1, n1) = self._marks[0.05], self._marks[0.95]
        n = max(1, n1 - n0)
        return n / max(1e-6, t1 - t0), (c1[role] - c0[role]) / n * 1000

    @classmethod
    def from_series(
        cls, finished_at: list[float], samples: list[tuple[float, dict[str, float]]]
    ) -> Window:
        """The window read afterwards from completion times (wall clock) and CPU samples
        taken meanwhile, interpolated at the 5% and 95% moments."""
        times = sorted(finished_at)
        window = cls(len(times))
        for q, threshold in window._at.items():
            moment = times[threshold - 1]
            window._marks[q] = (moment, _cpu_at(samples, moment), threshold)
        return window

    def cores(self) -> dict[str, float]:
        """Cores each role used during the window (the machine has os.cpu_count())."""
        (t0, c0, _), (t1, c1, _) = self._marks[0.05], self._marks[0.95]
        return {role: round((c1[role] - c0[role]) / max(1e-6, t1 - t0), 2) for role in c1}


def _cpu_at(samples: list[tuple[float, dict[str, float]]], moment: float) -> dict[str, float]:
    """CPU counters at ``moment``, linearly between the samples around it."""
    before = max((s for s in samples if s[0] <= moment), default=samples[0], key=lambda s: s[0])
    after = min((s for s in samples if s[0] >= moment), default=samples[-1], key=lambda s: s[0])
    span = after[0] - before[0]
    share = (moment - before[0]) / span if span > 0 else 0.0
    low, high = before[1], after[1]
    return {role: low[role] + share * (high[role] - low[role]) for role in low}


def in_worker_overhead(
    spans: list[tuple[str, float]], served: dict[str, list[tuple[float, float]]]
) -> list[float]:
    """Seconds each workflow spent in the worker beyond its provider calls: its time
    from claim to completion (Postgres clock) less the time the fake provider itself
    spent on its requests, from arrival to answer (the fake's clock). The worker's own
    timer around its call is not used: it would hide the worker's HTTP client time."""
    overhead = []
    for workflow_id, inside in spans:
        provider = sum(end - start for start, end in served.get(workflow_id, []))
        overhead.append(max(0.0, inside - provider))
    return overhead


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _fill(settings: Settings, count: int) -> dict[str, float]:
    """Enqueue ``count`` intents (batches of 10, 8 at once); return send times by workflow."""
    sent: dict[str, float] = {}
    async with QueueClient.from_settings(settings) as queue:
        gate = asyncio.Semaphore(8)

        async def batch(start: int) -> None:
            items, ids = [], []
            for i in range(start, min(count, start + 10)):
                workflow_id = uuid.uuid4()
                context = f"[[fake:tag:{workflow_id}]] bench {i}"  # the fake times it
                env = Envelope.wrap(
                    Intent.model_validate(
                        {
                            "type": "message_generation",
                            "userId": f"bench-{i % 20}",
                            "data": {"context": context, "cache": False},
                        }
                    ),
                    workflow_id,
                )
                items.append(env)
                ids.append(str(env.workflow_id))
            async with gate:
                await queue.send_envelopes(items)
            now = time.time()
            sent.update(dict.fromkeys(ids, now))

        await asyncio.gather(*(batch(i) for i in range(0, count, 10)))
    return sent


async def _fresh_queue(urls: StackUrls, *, fifo: bool = False, **overrides: Any) -> Settings:
    settings = demo_settings(
        urls,
        log_level="WARNING",
        queue_name=f"bench-{uuid.uuid4().hex[:8]}" + (".fifo" if fifo else ""),
        cloudwatch_enabled=False,
        user_share=1.0,
        cache_ttl=0,
        **overrides,
    )
    await create_queues(
        QueueSpec.from_settings(settings),
        endpoint=settings.sqs_endpoint_url,
        region=settings.aws_region,
    )
    return settings


async def ceiling(urls: StackUrls, count: int, pollers: int) -> Result:
    settings = await _fresh_queue(urls)
    await _fill(settings, count)
    done = 0
    window = Window(count)
    cpu0, started = time.process_time(), time.monotonic()
    async with aws_client(
        "sqs", settings.sqs_endpoint_url, settings.aws_region, pool=pollers * 2 + 4
    ) as sqs:
        url = (await sqs.get_queue_url(QueueName=settings.queue_name))["QueueUrl"]

        async def loop() -> None:
            nonlocal done
            empty = 0
            while done < count and empty < 3:
                got = (
                    await sqs.receive_message(
                        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                    )
                ).get("Messages", [])
                if not got:
                    empty += 1
                    continue
                empty = 0
                await sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(got)
                    ],
                )
                done += len(got)
                window.note(done, lambda: machine_cpu(set()))

        await asyncio.gather(*(loop() for _ in range(pollers)))
    seconds = time.monotonic() - started
    cpu = time.process_time() - cpu0
    rate, cpu_per_1000 = window.rate_and_cpu("bench_and_fakes")
    return Result(
        "ceiling (bare aioboto3 loop)",
        done,
        seconds,
        rate,
        cpu_per_1000,
        {
            "pollers": pollers,
            "cores_used": window.cores(),
            "wall_seconds_incl_start": round(seconds, 2),
            "cpu_seconds_per_1000_incl_start": round(cpu / max(1, done) * 1000, 2),
        },
    )


async def fleet_run(
    urls: StackUrls,
    name: str,
    count: int,
    *,
    processes: int = 1,
    concurrency: int = 64,
    pollers: int = 4,
    latency: Latency | None = None,
    fifo: bool = False,
) -> Result:
    settings = await _fresh_queue(  # the queue's own visibility timeout as the workers'
        urls,
        fifo=fifo,
        concurrency=concurrency,
        pollers=pollers,
        visibility_timeout=60,
        heartbeat_interval=20,
    )
    urls.fake.config = FakeConfig(latency=latency)
    sent = await _fill(settings, count)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "AWS_"))}
    env.update(
        {
            "AWS_ENDPOINT_URL_SQS": str(settings.sqs_endpoint_url),
            "DATABASE_URL": settings.require_database_url(),
            "OPENAI_BASE_URL": urls.openai_base_url,
            "OPENAI_API_KEY": DEMO_KEY,
            "FLEET_QUEUE_NAME": settings.queue_name,
            "FLEET_CONCURRENCY": str(concurrency),
            "FLEET_POLLERS": str(pollers),
            "FLEET_LOG_LEVEL": "WARNING",
            "FLEET_HEALTH_PORT": "0",
            "FLEET_CLOUDWATCH_ENABLED": "false",
            "FLEET_CACHE_TTL": "0",
            "FLEET_USER_SHARE": "1",
            "FLEET_WAIT_SECONDS": "2",
            "FLEET_VISIBILITY_TIMEOUT": "60",
            "FLEET_HEARTBEAT_INTERVAL": "20",
            "FLEET_LLM_RETRY_DELAYS": "0.05",
        }
    )
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker.cli",
        "run",
        "--processes",
        str(processes),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    watched = psutil.Process(proc.pid)
    peak_rss, cpu = 0, 0.0
    ids = list(sent)
    samples: list[tuple[float, dict[str, float]]] = []
    async with Store(settings.require_database_url()) as store:
        for tick in itertools.count():
            family = [watched, *watched.children(recursive=True)]
            rss = 0
            for p in family:
                with contextlib.suppress(psutil.Error):
                    rss += p.memory_info().rss
            peak_rss = max(peak_rss, rss)
            samples.append((time.time(), machine_cpu({p.pid for p in family})))
            cpu = max(cpu, samples[-1][1]["workers"])
            # the progress query is Postgres load too: once a second
            if tick % 5 == 4 and await completed_count(store, ids) >= count:
                break
            await asyncio.sleep(0.2)
        seconds = time.monotonic() - started
        rows = await timings(store, ids)
    window = Window.from_series([r.done for r in rows], samples)
    steady_rate, steady_cpu = window.rate_and_cpu("workers")
    proc.terminate()
    await proc.wait()
    to_done = [r.done - sent[r.id] for r in rows]
    overhead = in_worker_overhead([(r.id, r.inside) for r in rows], urls.fake.served)
    return Result(
        name,
        count,
        seconds,
        steady_rate,
        steady_cpu,
        {
            "wall_seconds_incl_start": round(seconds, 2),
            "cpu_seconds_per_1000_incl_start": round(cpu / count * 1000, 2),
            "processes": processes,
            "cores_used": window.cores(),
            "concurrency": concurrency,
            "queue_kind": "fifo" if fifo else "standard",
            "enqueue_to_done_p50_s": round(_pct(to_done, 0.5), 3),
            "enqueue_to_done_p95_s": round(_pct(to_done, 0.95), 3),
            "enqueue_to_done_p99_s": round(_pct(to_done, 0.99), 3),
            "overhead_p50_ms": round(_pct(overhead, 0.5) * 1000, 1),
            "overhead_p99_ms": round(_pct(overhead, 0.99) * 1000, 1),
            "peak_rss_mb": round(peak_rss / 2**20, 1),
        },
    )


async def run_bench(urls: StackUrls, *, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    await migrate(urls.database_url)
    n = 1000 if quick else 6000
    results: list[Result] = []

    async def step(coro: Any) -> Result:
        result: Result = await coro
        log(
            f"{result.scenario}: {result.per_second:.0f} msg/s, "
            f"{result.cpu_seconds_per_1000:.2f} CPU s/1000 {result.extra}"
        )
        results.append(result)
        return result

    bare = await step(ceiling(urls, n, pollers=4))
    await step(fleet_run(urls, "overhead (instant provider), default concurrency 64", n))
    tuned = await step(
        fleet_run(urls, "overhead (instant provider), concurrency 128", n, concurrency=128)
    )
    for concurrency in (64, 256) if quick else (64, 256, 512):
        count = max(300, concurrency * (3 if quick else 6))
        await step(
            fleet_run(
                urls,
                f"seed latency, concurrency {concurrency}",
                count,
                concurrency=concurrency,
                pollers=8,
                latency=SEED_LATENCY,
            )
        )
    await step(
        fleet_run(
            urls,
            "overhead (instant provider), concurrency 128, 2 processes",
            n,
            processes=2,
            concurrency=128,
        )
    )
    fifo = await fifo_scenarios(urls, quick, step)
    seed = {r.extra["concurrency"]: r for r in results if r.scenario.startswith("seed")}
    at_256 = seed.get(256)
    summary = {
        "ceiling_msgs_per_s": round(bare.per_second),
        "overhead_throughput_ratio": round(tuned.per_second / bare.per_second, 3),
        "overhead_cpu_ratio": round(tuned.cpu_seconds_per_1000 / bare.cpu_seconds_per_1000, 2),
        "seed_best_msgs_per_s": round(max(r.per_second for r in seed.values())),
        "seed_256_overhead_p99_ms": at_256.extra["overhead_p99_ms"] if at_256 else None,
        "seed_256_peak_rss_mb": at_256.extra["peak_rss_mb"] if at_256 else None,
        "fifo_vs_standard": fifo,
        "targets": {
            "overhead_ratio_min": 0.9,
            "cpu_ratio_max": 4.0,
            "seed_msgs_per_s_min": 200,
            "seed_overhead_p99_ms_max": 50,
            "seed_rss_mb_max_at_256": 200,
        },
    }
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "queue_server": "LocalStack 4.13.1 (host)",
        },
        "quick": quick,
        "results": [asdict(r) for r in results],
        "summary": summary,
    }
