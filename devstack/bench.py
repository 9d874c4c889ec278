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
import re
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
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
_PROBE = aiohttp.ClientTimeout(total=1.0)


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


def _to_steady(finished_at: list[float], spawned: float, rate: float) -> float:
    """Seconds from the worker's spawn (imports included) to the first second in which it
    completed at least 90% of its steady rate."""
    times = sorted(finished_at)
    ahead = 0
    for i, start in enumerate(times):
        while ahead < len(times) and times[ahead] < start + 1.0:
            ahead += 1
        if ahead - i >= 0.9 * rate:
            return round(start - spawned, 2)
    return float("nan")


def _free_port(count: int = 1) -> int:
    """A port with ``count`` free ports from it (child i of `fleet run --processes`
    serves health on FLEET_HEALTH_PORT + i; the next port may be a client's)."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base: int = probe.getsockname()[1]
        if all(_bindable(base + i) for i in range(count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports found on 127.0.0.1")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def _note_limit(
    web: aiohttp.ClientSession, port: int, started: float, trace: list[tuple[float, int, str]]
) -> None:
    """The worker's concurrency limit and the reason it last moved, when it moved."""
    try:
        async with web.get(f"http://127.0.0.1:{port}/metrics", timeout=_PROBE) as reply:
            text = await reply.text()
    except (aiohttp.ClientError, TimeoutError):
        return
    limit = re.search(r"^fleet_concurrency_limit\s+([\d.e+]+)$", text, re.M)
    reason = re.search(r'^fleet_concurrency_limit_reason\{reason="(\w+)"\}', text, re.M)
    if limit is None:
        return
    why = reason[1] if reason else ""
    point = (round(time.monotonic() - started, 1), int(float(limit[1])), why)
    if not trace or trace[-1][1:] != point[1:]:
        trace.append(point)


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
    concurrency: int | None = None,
    pollers: int | None = None,
    latency: Latency | None = None,
    fake: FakeConfig | None = None,
    fifo: bool = False,
) -> Result:
    """``fleet run`` on a pre-filled queue; ``concurrency`` pins the limit (None: the
    defaults, adaptive), ``pollers`` None: the default."""
    fixed = {"concurrency": concurrency} if concurrency else {}
    settings = await _fresh_queue(  # the queue's own visibility timeout as the workers'
        urls, fifo=fifo, visibility_timeout=60, heartbeat_interval=20, **fixed
    )
    urls.fake.config = fake or FakeConfig(latency=latency)
    sent = await _fill(settings, count)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "AWS_"))}
    env.update(
        {
            "AWS_ENDPOINT_URL_SQS": str(settings.sqs_endpoint_url),
            "DATABASE_URL": settings.require_database_url(),
            "OPENAI_BASE_URL": urls.openai_base_url,
            "OPENAI_API_KEY": DEMO_KEY,
            "FLEET_QUEUE_NAME": settings.queue_name,
            "FLEET_LOG_LEVEL": "WARNING",
            "FLEET_HEALTH_PORT": str(port := _free_port(processes)),
            "FLEET_CLOUDWATCH_ENABLED": "false",
            "FLEET_CACHE_TTL": "0",
            "FLEET_USER_SHARE": "1",
            "FLEET_WAIT_SECONDS": "2",
            "FLEET_VISIBILITY_TIMEOUT": "60",
            "FLEET_HEARTBEAT_INTERVAL": "20",
            "FLEET_LLM_RETRY_DELAYS": "0.05",
        }
    )
    if concurrency:
        env["FLEET_CONCURRENCY"] = env["FLEET_CONCURRENCY_MIN"] = str(concurrency)
    if pollers:
        env["FLEET_POLLERS"] = str(pollers)
    started, spawned = time.monotonic(), time.time()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker.cli",
        "run",
        "--processes",
        str(processes),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        # warnings and worse, read if it dies; closed once it is stopped, below
        stderr=(errors := tempfile.TemporaryFile()),  # noqa: SIM115
    )
    watched = psutil.Process(proc.pid)
    peak_rss, cpu = 0, 0.0
    ids = list(sent)
    samples: list[tuple[float, dict[str, float]]] = []
    trace: list[tuple[float, int, str]] = []  # the adaptive limit, read from /metrics
    async with Store(settings.require_database_url()) as store, aiohttp.ClientSession() as web:
        for tick in itertools.count():
            if tick % 5 == 0 and processes == 1:
                await _note_limit(web, port, started, trace)
            if proc.returncode is not None:
                errors.seek(0)
                tail = errors.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"{name}: `fleet run` exited {proc.returncode} early:\n{tail}")
            try:
                family = [watched, *watched.children(recursive=True)]
            except psutil.NoSuchProcess:  # it has just exited: the next tick says how
                await asyncio.sleep(0.2)
                continue
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
    errors.close()
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
            "concurrency": concurrency or "adaptive",
            "pollers": pollers or "default",
            "queue_kind": "fifo" if fifo else "standard",
            "enqueue_to_done_p50_s": round(_pct(to_done, 0.5), 3),
            "enqueue_to_done_p95_s": round(_pct(to_done, 0.95), 3),
            "enqueue_to_done_p99_s": round(_pct(to_done, 0.99), 3),
            "overhead_p50_ms": round(_pct(overhead, 0.5) * 1000, 1),
            "overhead_p99_ms": round(_pct(overhead, 0.99) * 1000, 1),
            "peak_rss_mb": round(peak_rss / 2**20, 1),
            "limit_trace": trace,
            "seconds_to_steady": _to_steady([r.done for r in rows], spawned, steady_rate),
        },
    )


async def run_bench(urls: StackUrls, *, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """The bare loop, then the fleet at its defaults (adaptive) and at fixed settings, with
    the instant provider and at the seed's latency, then the limiter under throttling."""
    await migrate(urls.database_url)
    instant, seed = (1500, 1500) if quick else (10_000, 5_000)
    results: list[Result] = []

    async def step(coro: Any) -> Result:
        result: Result = await coro
        log(
            f"{result.scenario}: {result.per_second:.0f} msg/s, "
            f"{result.cpu_seconds_per_1000:.2f} CPU s/1000 {result.extra}"
        )
        results.append(result)
        return result

    bare = await step(ceiling(urls, instant, pollers=4))
    default = await step(fleet_run(urls, "instant provider, defaults (adaptive)", instant))
    await step(fleet_run(urls, "instant provider, fixed 128", instant, concurrency=128))
    await step(fleet_run(urls, "instant provider, fixed 64", instant, concurrency=64))
    slow = SEED_LATENCY
    seeded = await step(fleet_run(urls, "seed latency, defaults (adaptive)", seed, latency=slow))
    for fixed in () if quick else (512, 1024):
        await step(
            fleet_run(urls, f"seed latency, fixed {fixed}", seed, concurrency=fixed, latency=slow)
        )
    half_way = urls.fake.requests + seed // 2  # the fake counts every scenario's requests
    throttle = FakeConfig(latency=slow, throttle_after=half_way, throttle_above=256)
    await step(
        fleet_run(
            urls,
            "seed latency, defaults, provider 429s past 256 in flight from half-way",
            seed,
            fake=throttle,
        )
    )
    if not quick:
        await step(fleet_run(urls, "instant provider, defaults, 2 processes", instant, processes=2))
    fifo = await fifo_scenarios(urls, quick, step)
    summary = {
        "ceiling_msgs_per_s": round(bare.per_second),
        "defaults_instant_throughput_ratio": round(default.per_second / bare.per_second, 3),
        "defaults_instant_cpu_s_per_1000": round(default.cpu_seconds_per_1000, 2),
        "defaults_seed_msgs_per_s": round(seeded.per_second),
        "fifo_vs_standard": fifo,
        "targets": {
            "defaults_instant_throughput_ratio_min": 0.9,
            "cpu_s_per_1000_max": 0.5,
            "seed_msgs_per_s_min": 450,
            "seconds_to_steady_max": 2.0,
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
