"""CPU per message of `fleet run` with tracing off, on at 10 % and on at 100 %.

    python -m devstack.tracing_bench [--messages 3000] [--repeats 3] [--concurrency 64]

Each run is ``devstack.bench.fleet_run`` (the "overhead" scenario: the instant
fake provider, Postgres writes on, a worker subprocess, CPU seconds per 1,000
messages of the worker between 5 % and 95 % done). The variants differ only in
the worker's OpenTelemetry variables: none (off), ``parentbased_traceidratio``
at 0.1, and at 1.0; spans go over OTLP/HTTP to a receiver in this process
(decoded and counted, so this process pays for it, not the worker). Runs are
interleaved (off, 10 %, 100 %, off, ...) so a neighbour's load spreads over
every variant; the table gives the median of the repeats.

    python -m devstack.tracing_bench --helpers off|0|0.1|1

prints the CPU µs per message of the tracing calls alone (one message's
consumer, handler, provider and group-commit spans, 20,000 times, spans kept
in memory): a figure the end-to-end runs are too noisy to resolve when off.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from devstack.bench import fleet_run
from devstack.demo import StackUrls, local_stack
from worker.commands.common import run_async
from worker.store import migrate

__all__ = ["VARIANTS", "main"]

VARIANTS: dict[str, dict[str, str]] = {
    "off": {},
    "on, 10 %": {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    },
    "on, 100 %": {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "1",
    },
}


class Receiver:
    """An OTLP/HTTP trace receiver that counts the spans it is sent."""

    def __init__(self) -> None:
        self.spans = 0
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        sent = ExportTraceServiceRequest.FromString(await request.read())
        self.spans += sum(len(ss.spans) for rs in sent.resource_spans for ss in rs.scope_spans)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )


@asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    got = Receiver()
    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_post("/v1/traces", got.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    got.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"  # type: ignore[attr-defined]
    try:
        yield got
    finally:
        await runner.cleanup()


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """``fleet_run`` hands this process's environment (OTEL_* included) to the worker."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def _bench(urls: StackUrls, args: argparse.Namespace) -> dict[str, Any]:
    await migrate(urls.database_url)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    async with receiving() as receiver:
        for repeat in range(args.repeats):
            for name, otel in VARIANTS.items():
                values = dict(otel)
                if otel:
                    values |= {
                        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                        "OTEL_SERVICE_NAME": "fleet-bench",
                    }
                before = receiver.spans
                with _environment(values):
                    result = await fleet_run(
                        urls, name, args.messages, concurrency=args.concurrency
                    )
                run = {
                    "cpu_s_per_1000": round(result.cpu_seconds_per_1000, 3),
                    "msgs_per_s": round(result.per_second, 1),
                    "spans_per_msg": round((receiver.spans - before) / args.messages, 2),
                }
                runs[name].append(run)
                print(f"repeat {repeat + 1}, {name}: {run}", flush=True)
    return _summary(runs, args)


def _summary(runs: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> dict[str, Any]:
    medians = {
        name: statistics.median(r["cpu_s_per_1000"] for r in found) for name, found in runs.items()
    }
    base = medians["off"]
    return {
        "messages": args.messages,
        "repeats": args.repeats,
        "concurrency": args.concurrency,
        "cpus": os.cpu_count(),
        "runs": runs,
        "median_cpu_s_per_1000": medians,
        "vs_off": {name: round(value / base - 1, 3) for name, value in medians.items()},
    }


def helpers_cost(rate: str, count: int = 20_000) -> float:
    """CPU µs per message of the span helpers the consumer calls (``off`` or a ratio)."""
    import time

    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

    from worker.observability import spans, tracing

    if rate != "off":
        tracing.configure_tracing(
            exporter=InMemorySpanExporter(), sampler=ParentBasedTraceIdRatio(float(rate))
        )
    started = time.process_time()
    for _ in range(count):
        with spans.consuming("m", {}, "{}", destination="q", receive_count=1, sent_at_ms=0) as c:
            tracing.current_trace_id()
            link = tracing.current_context()
            with (
                spans.span("handler x", attributes={"fleet.workflow.id": "w"}),
                spans.llm_attempt("openai", "gpt-4o-mini", 1, 800),
            ):
                pass
            with spans.group_commit("postgres complete", [link]):
                pass
            c.set_attribute("fleet.outcome", "completed")
    return (time.process_time() - started) / count * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--helpers", metavar="RATE", help="only the span helpers' cost")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--out", default="bench/tracing.json")
    args = parser.parse_args(argv)
    if args.helpers:
        print(f"tracing {args.helpers}: {helpers_cost(args.helpers):.1f} CPU µs per message")
        return
    with local_stack() as urls:
        report = run_async(_bench(urls, args))
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=2)
    print(json.dumps({k: report[k] for k in ("median_cpu_s_per_1000", "vs_off")}, indent=2))


if __name__ == "__main__":
    main()
