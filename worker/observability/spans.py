"""The span helpers the fleet's code calls (set-up and the shape of a trace: ``tracing``).

Each returns one shared no-op context manager while tracing is off, and
computes attributes only for spans that are recorded (sampled). Inside a trace
that is not sampled no child span is made at all (a parent-based sampler would
drop it anyway; the SDK charges ~10 µs a span to decide so): the unsampled
parent stays current, so log lines and copies still carry its trace id.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import Link, Span, SpanContext, SpanKind, Status, StatusCode

from worker.observability.tracing import PROPAGATOR, SEED, State

__all__ = [
    "consuming",
    "event",
    "group_commit",
    "llm_attempt",
    "llm_cache_hit",
    "llm_usage",
    "producing",
    "span",
]

_GEN_AI_SYSTEM = {"openai": "openai", "azure": "az.ai.openai"}
SQS_MAX_ATTRIBUTES = 10
_MAX_LINKS = 128  # the SDK's default span limit
_OFF: contextlib.nullcontext[Span] = contextlib.nullcontext(trace.INVALID_SPAN)


# --- carriers -----------------------------------------------------------------
Attributes = MutableMapping[str, dict[str, str]]


class _AttributeSetter(Setter[Attributes]):
    def set(self, carrier: Attributes, key: str, value: str) -> None:
        carrier[key] = {"DataType": "String", "StringValue": value}


class _AttributeGetter(Getter[Mapping[str, Any]]):
    """SQS attributes as sent (``{"StringValue": ...}``) or as received (plain strings)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        if isinstance(value, Mapping):
            value = value.get("StringValue")
        return [value] if isinstance(value, str) and value else None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier)


_SETTER = _AttributeSetter()
_GETTER = _AttributeGetter()


def _seed(text: object) -> int | None:
    """A seed trace id (32 hex digits, dashes allowed, not all zero) as an int."""
    if not isinstance(text, str):
        return None
    digits = text.replace("-", "").lower()
    if len(digits) != 32:
        return None
    try:
        value = int(digits, 16)
    except ValueError:
        return None
    return value or None


def _seed_in_body(body: str) -> int | None:
    """``traceContext.traceId`` of a body without a traceparent attribute (seed producers)."""
    if '"traceContext"' not in body:
        return None
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    if not isinstance(decoded, dict):
        return None
    intent = decoded.get("intent", decoded)
    context = intent.get("traceContext") if isinstance(intent, dict) else None
    return _seed(context.get("traceId")) if isinstance(context, dict) else None


def _started(name: str, parent: Context | None, kind: SpanKind, seed: int | None = None) -> Span:
    token = SEED.set(seed)
    try:
        return State.tracer.start_span(name, context=parent, kind=kind)
    finally:
        SEED.reset(token)


def _failed(span: Span, exc: BaseException) -> None:
    if span.is_recording():
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:200]))
        span.set_attribute("error.type", getattr(exc, "code", None) or type(exc).__name__)


# --- the queue -------------------------------------------------------------------
def producing(
    destination: str, attributes: Attributes, *, seed: str | None = None
) -> contextlib.AbstractContextManager[Span]:
    """A PRODUCER span for one message; its context goes into ``attributes``. Its parent
    is the current span, else the context the attributes carry already (a copy of a
    received message, a DLQ replay), else none (a new trace, ``seed`` its id if given)."""
    if not State.on:
        return _OFF
    current = trace.get_current_span()
    if current.get_span_context().is_valid and not current.is_recording():
        _inject(attributes, None)  # an unsampled trace: the copy carries it, unsampled
        return _OFF
    return _producing(destination, attributes, seed)


def _inject(attributes: Attributes, context: Context | None) -> None:
    attributes.pop("tracestate", None)
    PROPAGATOR.inject(attributes, context=context, setter=_SETTER)
    if len(attributes) > SQS_MAX_ATTRIBUTES:  # tracestate is the one to give up
        attributes.pop("tracestate", None)
    if len(attributes) > SQS_MAX_ATTRIBUTES:  # then the trace: the message matters more
        attributes.pop("traceparent", None)


@contextlib.contextmanager
def _producing(destination: str, attributes: Attributes, seed: str | None) -> Iterator[Span]:
    parent: Context | None = None
    if not trace.get_current_span().get_span_context().is_valid:
        parent = PROPAGATOR.extract(attributes, getter=_GETTER)
    started = _started(f"send {destination}", parent, SpanKind.PRODUCER, _seed(seed))
    if started.is_recording():
        started.set_attributes(
            {
                "messaging.system": "aws_sqs",
                "messaging.operation.type": "send",
                "messaging.destination.name": destination,
            }
        )
    _inject(attributes, trace.set_span_in_context(started))
    try:
        yield started
    except BaseException as exc:
        _failed(started, exc)
        raise
    finally:
        started.end()


def consuming(
    message_id: str,
    attributes: Mapping[str, str],
    body: str,
    *,
    destination: str,
    receive_count: int,
    sent_at_ms: int,
) -> contextlib.AbstractContextManager[Span]:
    """The CONSUMER span of one received message, current while it is processed: a child
    of the producer's context from its attributes (each message of a batch receive is
    its own trace), else a new trace (seeded by the body's ``traceContext.traceId``)."""
    if not State.on:
        return _OFF
    parent = PROPAGATOR.extract(attributes, getter=_GETTER)
    seed = None
    if not trace.get_current_span(parent).get_span_context().is_valid:
        seed = _seed_in_body(body)
    started = _started(f"process {destination}", parent, SpanKind.CONSUMER, seed)
    if started.is_recording():
        started.set_attributes(
            {
                "messaging.system": "aws_sqs",
                "messaging.operation.type": "process",
                "messaging.destination.name": destination,
                "messaging.message.id": message_id,
                "fleet.message.receive_count": receive_count,
                "fleet.message.queue_wait_ms": max(0, int(time.time() * 1000) - sent_at_ms),
            }
        )
    return trace.use_span(started, end_on_exit=True)


# --- inside a workflow ------------------------------------------------------------
def span(
    name: str, *, kind: SpanKind = SpanKind.INTERNAL, attributes: Mapping[str, Any] | None = None
) -> contextlib.AbstractContextManager[Span]:
    """A child of the current span, current itself; an exception leaving it is recorded."""
    if not State.on or not trace.get_current_span().is_recording():
        return _OFF
    return State.tracer.start_as_current_span(name, kind=kind, attributes=attributes)


def event(name: str, attributes: Mapping[str, Any]) -> None:
    """An event on the current span (a retry scheduled, a fallback taken)."""
    if State.on:
        current = trace.get_current_span()
        if current.is_recording():
            current.add_event(name, dict(attributes))


def llm_attempt(
    provider: str, model: str, attempt: int, max_tokens: int
) -> contextlib.AbstractContextManager[Span]:
    """One provider call attempt (GenAI semantic conventions: ``chat <model>``)."""
    if not State.on or not trace.get_current_span().is_recording():
        return _OFF
    return State.tracer.start_as_current_span(
        f"chat {model}",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.system": _GEN_AI_SYSTEM.get(provider, provider),
            "gen_ai.request.model": model,
            "gen_ai.request.max_tokens": max_tokens,
            "fleet.llm.provider": provider,
            "fleet.llm.attempt": attempt,
            "fleet.llm.cache_hit": False,
        },
    )


def llm_usage(
    current: Span, model: str, input_tokens: int, output_tokens: int, cost_usd: float, source: str
) -> None:
    """What an answered call used and cost, on its span."""
    if current.is_recording():
        current.set_attributes(
            {
                "gen_ai.response.model": model,
                "gen_ai.usage.input_tokens": input_tokens,
                "gen_ai.usage.output_tokens": output_tokens,
                "fleet.llm.cost_usd": cost_usd,
                "fleet.llm.usage_source": source,
            }
        )


def llm_cache_hit(provider: str, model: str, input_tokens: int, output_tokens: int) -> None:
    """An answer served from the response cache: a span of its own, at no cost."""
    if not State.on or not trace.get_current_span().is_recording():
        return
    with llm_attempt(provider, model, 1, 0) as hit:
        hit.set_attribute("fleet.llm.cache_hit", True)
        llm_usage(hit, model, input_tokens, output_tokens, 0.0, "cache")


def group_commit(
    name: str, carried: Sequence[SpanContext | None]
) -> contextlib.AbstractContextManager[Span]:
    """One span for a statement that carries many workflows: linked to each of them, and a
    child of the first sampled one (so it shows in at least one of their traces); none
    when none of them is sampled."""
    if not State.on:
        return _OFF
    valid = [c for c in carried if c is not None]
    parent = next((c for c in valid if c.trace_flags.sampled), None)
    if parent is None:  # none of them sampled
        return _OFF
    started = State.tracer.start_span(
        name,
        context=trace.set_span_in_context(trace.NonRecordingSpan(parent)),
        kind=SpanKind.CLIENT,
        links=[Link(c) for c in valid[:_MAX_LINKS]],
    )
    if started.is_recording():
        started.set_attributes(
            {
                "db.system.name": "postgresql",
                "db.operation.name": name.rpartition(" ")[2],
                "db.operation.batch.size": len(carried),
            }
        )
    return trace.use_span(started, end_on_exit=True)
