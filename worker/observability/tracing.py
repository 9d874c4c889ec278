"""Tracing: OpenTelemetry spans from the producer, across the queue, to the provider.

Off unless an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``): then no SDK tracer provider exists and
every helper here returns one shared no-op context manager, so tracing off
costs a global check per call site. On, the SDK reads its own standard
variables (``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER``/``_ARG``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*``)
and spans leave in batches over OTLP/HTTP (protobuf). One workflow's trace::

    send <queue>                   PRODUCER  (fleet enqueue, send_envelope, copies)
      process <queue>              CONSUMER  one per receive (a retry is another)
        handler <intent>           INTERNAL
          chat <model>             CLIENT    one per attempt, GenAI conventions
          send <queue>             PRODUCER  campaign children, onlyfans_send steps
          POST gateway /messages   CLIENT
        postgres complete          CLIENT    one per group commit, linked to each
                                             workflow it carries

The W3C context travels in the ``traceparent`` (and, when not empty,
``tracestate``) message attributes. A producer-given ``traceContext.traceId``
(the seed's shape) becomes the trace id of a trace that starts without a
parent. The span helpers are in ``spans``; docs/operations.md ("Tracing")
shows a rendered trace.
"""

from __future__ import annotations

import contextvars
import os
import socket
from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Sampler
from opentelemetry.trace import SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from worker import __version__
from worker.errors import ConfigError

__all__ = [
    "SERVICE_NAME",
    "configure_tracing",
    "current_context",
    "current_trace_id",
    "inject_headers",
    "log_trace_ids",
    "reset_tracing",
    "tracing_enabled",
]

SERVICE_NAME = "hybrid-orchestrator-fleet"
PROPAGATOR = TraceContextTextMapPropagator()
SEED: contextvars.ContextVar[int | None] = contextvars.ContextVar("fleet_seed", default=None)


class State:
    """Whether tracing is on, and the tracer the span helpers use."""

    on = False
    tracer: trace.Tracer = trace.NoOpTracer()
    provider: TracerProvider | None = None


# --- set-up -----------------------------------------------------------------
class _SeededIds(RandomIdGenerator):
    """A trace that starts here takes the producer's seed trace id when one is given."""

    def generate_trace_id(self) -> int:
        return SEED.get() or super().generate_trace_id()


def _endpoint(environ: Mapping[str, str]) -> str | None:
    return environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )


def _exporter_from(environ: Mapping[str, str]) -> SpanExporter | None:
    """The OTLP/HTTP exporter the standard variables ask for, or None (tracing off)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    kind = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower()
    if kind == "none" or not _endpoint(environ):
        return None
    if kind != "otlp":
        raise ConfigError(f"OTEL_TRACES_EXPORTER={kind!r}: the fleet exports only 'otlp'")
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol != "http/protobuf":
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: the fleet exports only 'http/protobuf'"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()  # endpoint, headers, timeout, compression: its own variables


def _resource() -> Resource:
    """The worker's name: OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win over ours."""
    detected = Resource.create({})
    ours: dict[str, str | int] = {
        "service.name": SERVICE_NAME,
        "service.version": __version__,
        "service.instance.id": f"{socket.gethostname()}:{os.getpid()}",
        "host.name": socket.gethostname(),
        "process.pid": os.getpid(),
        "process.runtime.name": "cpython",
    }
    name = str(detected.attributes.get("service.name", ""))
    merged = Resource(ours).merge(detected)
    if name.startswith("unknown_service"):
        merged = merged.merge(Resource({"service.name": SERVICE_NAME}))
    return merged


def configure_tracing(
    environ: Mapping[str, str] | None = None,
    *,
    exporter: SpanExporter | None = None,
    sampler: Sampler | None = None,
) -> bool:
    """Turn tracing on if the environment asks for it (or a test hands in an ``exporter``,
    exported synchronously); True when on. Once per process: a second call keeps the first."""
    if State.on:
        return True
    direct = exporter is not None
    exporter = exporter or _exporter_from(os.environ if environ is None else environ)
    if exporter is None:
        return False
    provider = TracerProvider(resource=_resource(), sampler=sampler, id_generator=_SeededIds())
    processor = SimpleSpanProcessor(exporter) if direct else BatchSpanProcessor(exporter)
    provider.add_span_processor(processor)
    if not direct:  # other OpenTelemetry instrumentation in the process joins the same traces
        trace.set_tracer_provider(provider)
    State.provider = provider
    State.tracer = provider.get_tracer("worker", __version__)
    State.on = True
    return True


def reset_tracing() -> None:
    """Flush, shut down and go back to off (tests; the process's exit does it otherwise)."""
    if State.provider is not None:
        State.provider.shutdown()
    State.provider = None
    State.tracer = trace.NoOpTracer()
    State.on = False


def tracing_enabled() -> bool:
    return State.on


def inject_headers(headers: MutableMapping[str, str]) -> None:
    """W3C ``traceparent``/``tracestate`` headers for an outbound HTTP call."""
    if State.on:
        PROPAGATOR.inject(headers)


def current_trace_id() -> str | None:
    """The current trace's id (32 hex digits), or None when tracing is off."""
    if not State.on:
        return None
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


def current_context() -> SpanContext | None:
    """The current span's context, to link to later (a group commit), or None."""
    if not State.on:
        return None
    context = trace.get_current_span().get_span_context()
    return context if context.is_valid else None


def log_trace_ids(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the current span's ``trace_id`` and ``span_id`` on the line."""
    if State.on:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            event_dict["trace_id"] = trace.format_trace_id(context.trace_id)
            event_dict["span_id"] = trace.format_span_id(context.span_id)
    return event_dict
