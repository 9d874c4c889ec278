"""CPU per request of three ways to POST JSON: the question behind decisions.md #30.

    python -m devstack.poster_bench [--requests 5000] [--concurrency 64] [--repeats 3]

Each client posts a chat-completions body to the dev stack's fake LLM
(``devstack.FakeLLM``, zero latency) and parses the JSON answer, as
``worker.outbound`` does. The fake runs in a child process, so
``time.process_time()`` here counts the client alone. Runs are interleaved
(a, b, c, a, b, c, ...) so that a neighbour's load spreads over every variant;
the table gives the median of the repeats.

- ``aiohttp``: the hand-made poster (one ``aiohttp.ClientSession``, body encoded
  with ``json.dumps``, the call bounded by ``asyncio.timeout``);
- ``httpx-aiohttp``: httpx's API over an aiohttp transport (``httpx_aiohttp``,
  the client OpenAI's SDK offers as ``DefaultAioHttpClient``);
- ``httpx``: httpx over its own pool (httpcore), for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import HttpxAiohttpClient

__all__ = ["VARIANTS", "Trial", "main", "run_trial"]

PATH = "/chat/completions"
HEADERS = {"Authorization": "Bearer bench"}
LIMIT = 30.0  # the whole-call time limit, as the OpenAI client's
CONNECTIONS = 512
BODY: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You write short, friendly direct messages."},
        {"role": "user", "content": "Write a two-line thank-you to a fan who tipped."},
    ],
    "temperature": 0.7,
    "max_completion_tokens": 800,
}

Post = Callable[[], Awaitable[Any]]
Variant = Callable[[str], AbstractAsyncContextManager[Post]]


@asynccontextmanager
async def _aiohttp(base_url: str) -> Any:
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONNECTIONS),
        headers={**HEADERS, "Content-Type": "application/json"},
    )
    timeout = aiohttp.ClientTimeout(sock_connect=10.0)

    async def post() -> Any:
        async with asyncio.timeout(LIMIT):
            async with session.post(
                base_url + PATH, data=json.dumps(BODY).encode(), timeout=timeout
            ) as response:
                return response.status, json.loads(await response.read())

    try:
        yield post
    finally:
        await session.close()


def _httpx_variant(factory: type[httpx.AsyncClient]) -> Variant:
    @asynccontextmanager
    async def variant(base_url: str) -> Any:
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        client = factory(base_url=base_url, headers=HEADERS, limits=limits)
        timeout = httpx.Timeout(LIMIT, connect=10.0)

        async def post() -> Any:
            async with asyncio.timeout(LIMIT):
                response = await client.post(PATH, json=BODY, timeout=timeout)
                return response.status_code, response.json()

        try:
            yield post
        finally:
            await client.aclose()

    return variant


VARIANTS: dict[str, Variant] = {
    "aiohttp": _aiohttp,
    "httpx-aiohttp": _httpx_variant(HttpxAiohttpClient),
    "httpx": _httpx_variant(httpx.AsyncClient),
}


@dataclass(frozen=True, slots=True)
class Trial:
    variant: str
    requests: int
    cpu_s: float
    wall_s: float

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_s / self.requests * 1e6


async def run_trial(variant: str, base_url: str, requests: int, concurrency: int) -> Trial:
    """``requests`` POSTs, ``concurrency`` at a time, after one warm-up round (not counted)."""
    async with VARIANTS[variant](base_url) as post:
        await asyncio.gather(*(post() for _ in range(concurrency)))  # open the connections
        counter = itertools.count()

        async def lane() -> None:
            while next(counter) < requests:
                status, _ = await post()
                if status != 200:
                    raise RuntimeError(f"{variant}: HTTP {status}")

        cpu, wall = time.process_time(), time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(lane())
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Trial(variant, requests, cpu, wall)


def _serve_fake(conn: Connection) -> None:
    from devstack.fake_llm import FakeLLM

    with FakeLLM(latency_ms=0.0) as fake:
        conn.send(fake.base_url)
        conn.recv()  # until the parent says stop


def table(trials: list[Trial]) -> str:
    """Markdown: median CPU per request and throughput, and the CPU against aiohttp."""
    names = list(dict.fromkeys(t.variant for t in trials))
    medians = {
        n: statistics.median(t.cpu_us_per_request for t in trials if t.variant == n) for n in names
    }
    lines = [
        "| client | CPU µs/request (median) | runs | requests/s (median) | CPU vs aiohttp |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    for name in names:
        runs = [t for t in trials if t.variant == name]
        each = ", ".join(f"{t.cpu_us_per_request:.0f}" for t in runs)
        rate = statistics.median(t.requests / t.wall_s for t in runs)
        ratio = medians[name] / medians.get("aiohttp", medians[name]) - 1
        lines.append(f"| {name} | {medians[name]:.0f} | {each} | {rate:.0f} | {ratio:+.1%} |")
    return "\n".join(lines)


async def _bench(base_url: str, args: argparse.Namespace) -> list[Trial]:
    trials = []
    for _ in range(args.repeats):
        for name in args.variants:
            trial = await run_trial(name, base_url, args.requests, args.concurrency)
            print(f"{name}: {trial.cpu_us_per_request:.0f} µs CPU/request", flush=True)
            trials.append(trial)
    return trials


def _run(work: Coroutine[Any, Any, list[Trial]]) -> list[Trial]:
    """On uvloop where it installs, as the worker runs (decisions.md #28)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(work)
    return uvloop.run(work)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args(argv)
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    fake = multiprocessing.get_context("spawn").Process(target=_serve_fake, args=(theirs,))
    fake.start()
    try:
        base_url = ours.recv()
        trials = _run(_bench(base_url, args))
    finally:
        ours.send("stop")
        fake.join(10)
    print(table(trials))


if __name__ == "__main__":
    main()
