"""Traces across the queue: span trees from an in-memory exporter, OTLP/HTTP from `fleet run`."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind

from tests.support import Factory, LoggedProcess, drain, env_for, envelope, send_bodies, serving
from worker.observability import configure_tracing, reset_tracing, tracing_enabled
from worker.observability.spans import consuming, producing, span
from worker.observability.tracing import current_trace_id, log_trace_ids
from worker.ops.dlq import DlqWorkbench
from worker.queue import QueueClient
from worker.store import Store


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test, every trace sampled, spans kept in memory."""
    memory = InMemorySpanExporter()
    assert configure_tracing(exporter=memory, sampler=ALWAYS_ON)
    try:
        yield memory
    finally:
        reset_tracing()


# --- reading span trees --------------------------------------------------------------
def _hex(trace_id: int) -> str:
    return trace.format_trace_id(trace_id)


def _kids(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    pid = parent.context.span_id
    found = [s for s in spans if s.parent is not None and s.parent.span_id == pid]
    return sorted(found, key=lambda s: s.start_time or 0)


def _one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, f"{name}: {[s.name for s in spans]}"
    return found[0]


def _trace_of(spans: Sequence[ReadableSpan], workflow_id: str) -> list[ReadableSpan]:
    handler = next(s for s in spans if (s.attributes or {}).get("fleet.workflow.id") == workflow_id)
    return [s for s in spans if s.context.trace_id == handler.context.trace_id]


_SHOWN = (
    "fleet.outcome",
    "fleet.message.receive_count",
    "gen_ai.system",
    "gen_ai.request.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "fleet.llm.cost_usd",
    "fleet.llm.attempt",
    "fleet.llm.cache_hit",
    "db.operation.batch.size",
    "http.response.status_code",
)


def render(spans: Sequence[ReadableSpan]) -> str:
    """The trace as an indented text tree (docs/operations.md shows one)."""
    roots = [s for s in spans if s.parent is None or s.parent.span_id not in _ids(spans)]
    lines: list[str] = []

    def walk(node: ReadableSpan, depth: int) -> None:
        attrs = node.attributes or {}
        shown = " ".join(f"{k}={attrs[k]}" for k in _SHOWN if k in attrs)
        links = f" links={len(node.links)}" if node.links else ""
        ms = ((node.end_time or 0) - (node.start_time or 0)) / 1e6
        kind = node.kind.name.lower()
        lines.append(f"{'  ' * depth}{node.name}  [{kind}, {ms:.1f} ms] {shown}{links}".rstrip())
        for kid in _kids(spans, node):
            walk(kid, depth + 1)

    for root in sorted(roots, key=lambda s: s.start_time or 0):
        walk(root, 0)
    return "\n".join(lines)


def _ids(spans: Sequence[ReadableSpan]) -> set[int]:
    return {s.context.span_id for s in spans}


# --- end to end, in process --------------------------------------------------------------
async def test_one_workflow_from_producer_to_gateway(
    exported: InMemorySpanExporter, make_settings: Factory, store: Store
) -> None:
    settings = await make_settings()
    env = envelope(
        {
            "type": "message_generation",
            "userId": f"u-{uuid.uuid4().hex[:6]}",
            "recipientId": "fan-1",
            "sendToOnlyFans": True,
            "data": {"context": "renewal"},
        }
    )
    await send_bodies(settings, [env])
    stats = await drain(settings)
    assert stats.outcomes == {"completed": 2}  # the workflow and its send step
    spans = _trace_of(exported.get_finished_spans(), str(env.workflow_id))

    root = next(s for s in spans if s.parent is None)
    assert root.kind == SpanKind.PRODUCER and root.name == f"send {settings.queue_name}"
    (consumer,) = _kids(spans, root)
    assert consumer.kind == SpanKind.CONSUMER and consumer.name == f"process {settings.queue_name}"
    attrs = consumer.attributes or {}
    assert attrs["fleet.outcome"] == "completed" and attrs["fleet.message.receive_count"] == 1
    assert attrs["fleet.message.queue_wait_ms"] >= 0
    handler = _one(_kids(spans, consumer), "handler message_generation")
    chat, step = _kids(spans, handler)
    llm = chat.attributes or {}
    assert chat.kind == SpanKind.CLIENT and chat.name == f"chat {llm['gen_ai.request.model']}"
    assert llm["gen_ai.system"] == "openai" and llm["gen_ai.operation.name"] == "chat"
    assert llm["gen_ai.usage.input_tokens"] > 0 and llm["gen_ai.usage.output_tokens"] > 0
    assert llm["fleet.llm.cost_usd"] > 0 and llm["fleet.llm.attempt"] == 1
    assert llm["fleet.llm.cache_hit"] is False

    assert step.kind == SpanKind.PRODUCER  # the onlyfans_send step, in the same trace
    (send_consumer,) = _kids(spans, step)
    send_handler = _one(_kids(spans, send_consumer), "handler onlyfans_send")
    gateway = _one(_kids(spans, send_handler), "POST gateway /messages")
    assert (gateway.attributes or {})["http.response.status_code"] == 201

    commits = [s for s in spans if s.name == "postgres complete"]
    assert commits and all(s.kind == SpanKind.CLIENT for s in commits)
    linked = {link.context.span_id for s in commits for link in s.links}
    assert consumer.context.span_id in linked
    claims = [s for s in spans if s.name == "postgres claim"]
    assert consumer.context.span_id in {link.context.span_id for s in claims for link in s.links}

    row = await store.workflow(str(env.workflow_id))
    assert row is not None and row["trace_id"] == _hex(root.context.trace_id)  # rows join traces


async def test_retried_workflow_is_two_consumer_spans_in_one_trace(
    exported: InMemorySpanExporter, make_settings: Factory
) -> None:
    settings = await make_settings()
    key = uuid.uuid4().hex
    env = envelope(
        {
            "type": "message_generation",
            "userId": "u-retry",
            "data": {"context": f"[[fake:transient:{key}:1]] hello"},
        }
    )
    await send_bodies(settings, [env])
    stats = await drain(settings)
    assert stats.outcomes == {"retried": 1, "completed": 1}
    spans = _trace_of(exported.get_finished_spans(), str(env.workflow_id))
    consumers = sorted(
        (s for s in spans if s.kind == SpanKind.CONSUMER), key=lambda s: s.start_time or 0
    )
    assert [(c.attributes or {})["fleet.outcome"] for c in consumers] == ["retried", "completed"]
    assert [(c.attributes or {})["fleet.message.receive_count"] for c in consumers] == [1, 2]
    root = next(s for s in spans if s.parent is None)
    assert all(c.parent is not None and c.parent.span_id == root.context.span_id for c in consumers)
    first = _one(_kids(spans, consumers[0]), "handler message_generation")
    (failed,) = _kids(spans, first)
    assert failed.status.status_code == trace.StatusCode.ERROR
    assert _one(_kids(spans, consumers[0]), "postgres record_failure")


async def test_campaign_children_continue_the_parent_trace(
    exported: InMemorySpanExporter, make_settings: Factory
) -> None:
    settings = await make_settings(campaign_chunk=2)
    env = envelope(
        {
            "type": "campaign_execution",
            "userId": f"u-{uuid.uuid4().hex[:6]}",
            "data": {"brief": "promo", "recipients": ["a", "b", "c"]},
        }
    )
    await send_bodies(settings, [env])
    stats = await drain(settings)
    assert stats.outcomes == {"completed": 1 + 2 + 3}  # parent, two chunks, three sends
    spans = _trace_of(exported.get_finished_spans(), str(env.workflow_id))
    parent = _one(spans, "handler campaign_execution")
    children = [s for s in spans if s.name == "handler campaign_batch"]
    assert len(children) == 2
    spawned = [s for s in _kids(spans, parent) if s.kind == SpanKind.PRODUCER]
    assert len(spawned) == 2
    assert len([s for s in spans if s.name == "POST gateway /messages"]) == 3


async def test_dlq_replay_continues_the_trace(
    exported: InMemorySpanExporter, make_settings: Factory, store: Store
) -> None:
    settings = await make_settings()
    env = envelope(
        {
            "type": "content_planning",
            "userId": "u-dlq",
            "forceProvider": "azure",  # not configured here: permanent, to the DLQ
            "data": {"goal": "launch", "days": 3},
        }
    )
    await send_bodies(settings, [env])
    assert (await drain(settings)).outcomes == {"dead_lettered": 1}
    async with QueueClient.from_settings(settings) as queue:
        bench = DlqWorkbench(queue, store)
        entries = await bench.scan(hold_seconds=5)
        assert len(entries) == 1
        await bench.replay(entries)
    assert (await drain(settings)).outcomes == {"dead_lettered": 1}
    spans = _trace_of(exported.get_finished_spans(), str(env.workflow_id))
    consumers = [s for s in spans if s.kind == SpanKind.CONSUMER]
    assert len(consumers) == 2
    dlq_name = f"send {settings.dead_letter_queue_name}"
    moves = [s for s in spans if s.name == dlq_name]
    assert len(moves) == 2  # each failure copied to the DLQ within its consumer span
    replay = next(
        s
        for s in spans
        if s.name == f"send {settings.queue_name}" and s.parent is not None and s.parent.is_remote
    )
    assert replay.parent is not None and replay.parent.span_id in _ids(moves)


# --- units -----------------------------------------------------------------------------
async def test_attribute_budget_gives_up_tracestate_first(
    exported: InMemorySpanExporter,
) -> None:
    received = {f"a{i}": {"DataType": "String", "StringValue": "x"} for i in range(9)}
    received["traceparent"] = {
        "DataType": "String",
        "StringValue": f"00-{'ab' * 16}-{'cd' * 8}-01",
    }
    received["tracestate"] = {"DataType": "String", "StringValue": "vendor=1"}
    roomy = {k: v for k, v in received.items() if k != "a0"}
    with producing("q", received):
        pass
    with producing("q", roomy):
        pass
    assert len(received) == 10 and "tracestate" not in received  # SQS takes at most 10
    assert roomy["tracestate"]["StringValue"] == "vendor=1"  # with room, it stays
    assert received["traceparent"]["StringValue"].startswith(f"00-{'ab' * 16}-")
    (first, _) = exported.get_finished_spans()
    assert first.parent is not None and first.parent.span_id == int("cd" * 8, 16)


async def test_log_lines_carry_the_current_trace_and_span(
    exported: InMemorySpanExporter,
) -> None:
    with (
        consuming("m-1", {}, "{}", destination="q", receive_count=1, sent_at_ms=0),
        span("work") as current,
    ):
        assert current.is_recording()
        line = log_trace_ids(None, "info", {"event": "x"})
        context = current.get_span_context()
    assert line["trace_id"] == _hex(context.trace_id) == f"{context.trace_id:032x}"
    assert line["span_id"] == f"{context.span_id:016x}"
    assert log_trace_ids(None, "info", {"event": "y"}) == {"event": "y"}  # outside a span


def test_off_is_the_api_no_op() -> None:
    assert not tracing_enabled()
    assert not configure_tracing({"OTEL_SERVICE_NAME": "x"})  # no endpoint: stays off
    attrs: dict[str, dict[str, str]] = {}
    with producing("q", attrs) as current:
        assert not current.is_recording()
    assert attrs == {} and current_trace_id() is None
    assert log_trace_ids(None, "info", {"event": "x"}) == {"event": "x"}


# --- OTLP/HTTP from real `fleet run` processes ------------------------------------------
class Receiver:
    """An OTLP/HTTP trace receiver: decodes each ExportTraceServiceRequest it is sent."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.requests.append(ExportTraceServiceRequest.FromString(body))
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """(resource attributes, span) for every span received."""
        found = []
        for req in self.requests:
            for rs in req.resource_spans:
                resource = {a.key: _value(a.value) for a in rs.resource.attributes}
                found.extend((resource, s) for ss in rs.scope_spans for s in ss.spans)
        return found


def _value(value: Any) -> Any:
    return getattr(value, value.WhichOneof("value")) if value.WhichOneof("value") else None


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got = Receiver()
    async with serving({"/v1/traces": got.handle}) as url:
        got.url = url
        yield got


async def _run_fleet(settings: Any, **otel: str) -> str:
    proc = await LoggedProcess.start(["run", "--until-idle"], env_for(settings, **otel))
    code, log = await proc.finish(within=120)
    assert code == 0, log[-2000:]
    return log


@pytest.mark.slow
async def test_fleet_run_exports_over_otlp_http(receiver: Receiver, make_settings: Factory) -> None:
    settings = await make_settings()
    seed = uuid.uuid4().hex[:16] + "7" * 16  # a producer's traceContext (the seed's shape)
    env = envelope(
        {
            "type": "content_validation",
            "userId": "u-otlp",
            "data": {"content": "new set friday"},
            "traceContext": {"traceId": seed},
        }
    )
    await send_bodies(settings, [env])  # this process does not trace: no traceparent
    log = await _run_fleet(
        settings,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_SERVICE_NAME="fleet-under-test",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    received = receiver.spans()
    names = {s.name for _, s in received}
    assert {f"process {settings.queue_name}", "handler content_validation"} <= names
    seeded = [s for _, s in received if s.trace_id.hex() == seed]
    assert {s.name for s in seeded} >= {"handler content_validation"}
    assert any(s.name.startswith("chat ") for s in seeded)
    resource = received[0][0]
    assert resource["service.name"] == "fleet-under-test"
    assert resource["service.version"] and resource["host.name"] and resource["process.pid"] > 0
    started = [json.loads(line) for line in log.splitlines() if '"workflow_started"' in line]
    assert started and started[0]["trace_id"] == seed and len(started[0]["span_id"]) == 16


@pytest.mark.slow
async def test_tracing_off_exports_nothing(receiver: Receiver, make_settings: Factory) -> None:
    settings = await make_settings()
    env = envelope({"type": "content_validation", "userId": "u-off", "data": {"content": "hi"}})
    await send_bodies(settings, [env])
    log = await _run_fleet(
        settings, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_SDK_DISABLED="true"
    )
    assert '"workflow_completed"' in log
    assert receiver.requests == []
    started = [json.loads(line) for line in log.splitlines() if '"workflow_started"' in line]
    assert started[0]["trace_id"] == env.workflow_id.hex and "span_id" not in started[0]
