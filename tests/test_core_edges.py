"""Edges of the pure core that `make mutate` found unguarded (docs/testing.md).

Each test here kills mutants that survived the unit tests: a boundary moved by
one, an ``or`` turned into ``and``, a field name or code changed. Pure: no
queue, no database, no network.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from worker.consumer import retry_delay
from worker.contract import (
    MAX_JSON_DEPTH,
    Envelope,
    Intent,
    encode_envelope,
    json_schema,
    message_attributes,
    parse_message,
)
from worker.contract.door import _depth
from worker.errors import (
    EnqueueRefused,
    MalformedMessage,
    UpstreamRateLimited,
    UpstreamRefused,
    UpstreamUnavailable,
)
from worker.providers import classify
from worker.providers.taxonomy import error_fields
from worker.sends.service import MAX_DELAY, enqueue_delay, send_key

BARE = {"type": "content_planning", "userId": "u", "data": {"goal": "g"}}


# --- send slots ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("due_in", "delay"),
    [
        (-30.0, 0),
        (0.0, 0),
        (0.0005, 0),  # within a millisecond counts as due
        (0.01, 1),  # never early by a fraction of a second
        (1.0, 1),
        (1.5, 2),
        (899.2, 900),
        (900.0, 900),
        (901.0, MAX_DELAY),  # SQS's ceiling; the send step re-delays the rest
        (5000.0, MAX_DELAY),
    ],
)
def test_enqueue_delay_rounds_up_and_stays_within_sqs_limits(due_in: float, delay: int) -> None:
    assert enqueue_delay(due_in) == delay
    assert MAX_DELAY == 900


# --- retry delay -----------------------------------------------------------------
def test_retry_delay_jitter_comes_from_the_given_rng_and_is_added() -> None:
    expected = 4.0 + random.Random(7).uniform(-0.4, 0.4)  # attempt 3: 1·2², ±10 %
    assert retry_delay(3, base=1, cap=60, rng=random.Random(7)) == expected


def test_retry_delay_below_a_second_is_kept() -> None:
    assert retry_delay(1, base=0.2, cap=5, jitter=0) == 0.2
    assert retry_delay(2, base=0.2, cap=5, jitter=0) == 0.4


# --- provider error taxonomy -----------------------------------------------------
def test_error_fields_read_code_type_message_and_azures_inner_error() -> None:
    assert error_fields("not json") == ("", "")
    assert error_fields({"error": "flat"}) == ("", "")
    assert error_fields({"error": {}}) == ("", "")
    assert error_fields({"error": {"type": "invalid_request_error", "message": "bad"}}) == (
        "invalid_request_error",
        "bad",
    )
    assert error_fields({"error": {"code": "c", "type": "t", "message": "m"}}) == ("c", "m")
    azure = {
        "error": {
            "code": "content_filter_policy",
            "message": "filtered",
            "innererror": {"code": "ResponsibleAIPolicyViolation"},
        }
    }
    assert error_fields(azure) == ("content_filter", "filtered")
    other_inner = {"error": {"code": "x", "innererror": {"code": "SomethingElse"}}}
    assert error_fields(other_inner) == ("x", "")
    assert error_fields({"error": {"message": "m" * 500}})[1] == "m" * 300


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (408, UpstreamUnavailable, "server"),
        (409, UpstreamRefused, "validation"),
        (410, UpstreamRefused, "unknown"),
        (413, UpstreamRefused, "validation"),
        (414, UpstreamRefused, "unknown"),
        (418, UpstreamRefused, "unknown"),
    ],
)
def test_classify_status_edges(status: int, kind: type, code: str) -> None:
    error = classify("azure", status, None, httpx.Headers({}))
    assert type(error) is kind and error.code == code
    assert str(error) == f"azure: HTTP {status}"


def test_classify_detail_and_retry_hint() -> None:
    body = {"error": {"code": "rate_limit_exceeded", "message": "slow down"}}
    error = classify("openai", 429, body, httpx.Headers({"retry-after": "3"}))
    assert isinstance(error, UpstreamRateLimited) and error.retry_after == 3
    assert str(error) == "openai: HTTP 429 rate_limit_exceeded: slow down"
    plain = classify("openai", 400, {"error": {"message": "no code"}}, httpx.Headers({}))
    assert str(plain) == "openai: HTTP 400: no code"
    quota = classify("openai", 429, {"error": {"code": "insufficient_quota"}}, httpx.Headers({}))
    assert str(quota) == "openai: HTTP 429 insufficient_quota"
    for status, text in ((401, "auth"), (404, "not_found"), (400, "content_filter"), (418, "")):
        body = {"error": {"code": "content_filter"}} if text == "content_filter" else None
        assert str(classify("p", status, body, httpx.Headers({}))).startswith(f"p: HTTP {status}")


# --- contract --------------------------------------------------------------------
@pytest.mark.parametrize("user_id", ["a\x01b", "tab\there", "nl\n", "del\x7f", "\x1f"])
def test_control_characters_in_ids_are_refused(user_id: str) -> None:
    with pytest.raises(MalformedMessage) as err:
        parse_message(json.dumps({**BARE, "userId": user_id}), "m-1")
    assert err.value.code == "schema" and "control characters" in str(err.value)


@pytest.mark.parametrize("user_id", ["with space", " ", "~tilde", "é\u0080ü", "🙂"])
def test_printable_ids_are_kept(user_id: str) -> None:
    assert parse_message(json.dumps({**BARE, "userId": user_id}), "m-1").intent.user_id == user_id


def _nested(depth: int) -> dict[str, object]:
    """A bare intent whose JSON nests exactly ``depth`` levels (leaves count as one)."""
    value: object = "x"
    for _ in range(depth - 2):  # the body and the leaf are the other two levels
        value = {"a": value}
    return {**BARE, "data": value}


def test_nesting_limit_is_exact() -> None:
    at_limit = _nested(MAX_JSON_DEPTH)
    assert _depth(at_limit, MAX_JSON_DEPTH) == MAX_JSON_DEPTH
    assert _depth({"a": [1]}, 10) == 3 and _depth("x", 10) == 1
    parse_message(json.dumps(at_limit), "m-1")
    with pytest.raises(MalformedMessage) as err:
        parse_message(json.dumps(_nested(MAX_JSON_DEPTH + 1)), "m-1")
    assert err.value.code == "too_deep"


def test_unknown_type_inside_an_envelope_is_named_as_such() -> None:
    body = {"version": 1, "workflowId": str(uuid.uuid4()), "intent": {**BARE, "type": "x"}}
    with pytest.raises(MalformedMessage) as err:
        parse_message(json.dumps(body), "m-1")
    assert err.value.code == "unknown_intent"
    wrong_priority = {**body, "intent": {**BARE, "priority": "urgent"}}
    with pytest.raises(MalformedMessage) as err:
        parse_message(json.dumps(wrong_priority), "m-1")
    assert err.value.code == "schema"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"version": 1}, "intent"),
        ({"workflowId": "3f0c6a4e-0000-4000-8000-000000000000"}, "intent"),
        ({"intent": BARE}, "workflowId"),
    ],
)
def test_any_envelope_key_makes_it_an_envelope(extra: dict[str, object], named: str) -> None:
    body = {**extra} if "intent" in extra else {**BARE, **extra}
    with pytest.raises(MalformedMessage) as err:
        parse_message(json.dumps(body), "m-1")
    assert err.value.code == "schema"
    assert f"{named}: Field required" in str(err.value)


def test_a_bare_intents_workflow_id_is_stable_per_message_id() -> None:
    first = parse_message(json.dumps(BARE), "msg-17").workflow_id
    assert first == parse_message(json.dumps(BARE), "msg-17").workflow_id
    assert first == uuid.uuid5(uuid.NAMESPACE_URL, "sqs:msg-17")
    given = uuid.uuid4()
    assert parse_message(json.dumps(BARE), str(given)).workflow_id == given


def test_encode_refuses_one_byte_over_the_limit_only() -> None:
    envelope = Envelope.wrap(Intent.model_validate(BARE))
    body = encode_envelope(envelope, 10_000)
    assert "null" not in body  # absent optional fields stay off the wire
    assert encode_envelope(envelope, len(body.encode())) == body
    with pytest.raises(EnqueueRefused) as err:
        encode_envelope(envelope, len(body.encode()) - 1)
    assert err.value.code == "too_large"


def test_wrap_stamps_the_enqueue_time_in_utc() -> None:
    before = datetime.now(UTC)
    envelope = Envelope.wrap(Intent.model_validate(BARE))
    assert envelope.enqueued_at is not None and envelope.enqueued_at.tzinfo is not None
    assert before <= envelope.enqueued_at <= datetime.now(UTC)
    assert "enqueuedAt" in json.loads(encode_envelope(envelope, 10_000))


def test_the_published_schema_file_is_what_json_schema_returns() -> None:
    """In-process twin of the `fleet schema --check` test (a subprocess imports the
    installed package, so a change to ``json_schema`` itself would go unseen there)."""
    published = Path(__file__).resolve().parents[1] / "docs" / "contract.schema.json"
    assert json_schema() == json.loads(published.read_text())


def test_reasons_name_the_path_and_count_what_they_leave_out() -> None:
    seven_wrong = {
        "type": "content_planning",
        "userId": "",
        "priority": "urgent",
        "forceProvider": "x",
        "platforms": "y",
        "sendToOnlyFans": "maybe",
        "contentType": 5,
        "recipientId": 6,
    }
    with pytest.raises(MalformedMessage) as err:
        parse_message(json.dumps(seven_wrong), "m-1")
    parts = str(err.value).split("; ")
    assert len(parts) == 6 and parts[-1] == "and 2 more"  # five named, the rest counted
    assert {part.split(": ")[0].removeprefix("intent.") for part in parts[:5]} <= set(seven_wrong)
    six_wrong = {k: v for k, v in seven_wrong.items() if k != "recipientId"}
    with pytest.raises(MalformedMessage) as err:
        parse_message(json.dumps(six_wrong), "m-1")
    assert str(err.value).endswith("; and 1 more")
    five_wrong = {k: v for k, v in six_wrong.items() if k != "contentType"}
    with pytest.raises(MalformedMessage) as err:
        parse_message(json.dumps(five_wrong), "m-1")
    with pytest.raises(ValidationError) as raw:
        Intent.model_validate(five_wrong)
    pydantic_fields = {".".join(map(str, e["loc"])) for e in raw.value.errors()}
    named = {part.split(": ")[0].removeprefix("intent.") for part in str(err.value).split("; ")}
    assert named == pydantic_fields  # every field pydantic refused is named, nothing more
    nested = {"version": 1, "workflowId": str(uuid.uuid4()), "intent": {**BARE, "userId": 7}}
    with pytest.raises(MalformedMessage) as err:
        parse_message(json.dumps(nested), "m-1")
    assert str(err.value).startswith("intent.userId: ")


def test_unparseable_bodies_say_what_the_decoder_said() -> None:
    with pytest.raises(MalformedMessage) as err:
        parse_message("{oops", "m-1")
    assert err.value.code == "not_json" and "Expecting property name" in str(err.value)
    with pytest.raises(MalformedMessage) as err:
        parse_message("[1]", "m-1")
    assert err.value.code == "not_object" and str(err.value).endswith("got list")


def test_send_key_is_stable_per_source_and_recipient() -> None:
    key = send_key("wf-1", "fan-1")
    assert key == send_key("wf-1", "fan-1") and len(key) == 40
    assert int(key, 16) >= 0  # hex
    assert len({key, send_key("wf-1", "fan-2"), send_key("wf-2", "fan-1")}) == 3
    assert key == hashlib.sha256(b"wf-1:fan-1").hexdigest()[:40]


def test_message_attributes_route_without_a_body_parse() -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    intent = Intent.model_validate({**BARE, "priority": "high", "traceContext": {"traceId": trace}})
    attributes = message_attributes(Envelope.wrap(intent))
    assert {k: v["StringValue"] for k, v in attributes.items()} == {
        "intentType": "content_planning",
        "priority": "high",
        "userId": "u",
    }
    assert all(v["DataType"] == "String" for v in attributes.values())
    # no made-up traceparent: a real one is added by the producer span when tracing is on
    # (tests/test_tracing.py), so untraced producers do not force sampling downstream
    assert "traceparent" not in message_attributes(Envelope.wrap(Intent.model_validate(BARE)))


def test_a_dlq_copy_keeps_why_and_who_within_ten_attributes() -> None:
    from worker.queue.messages import fit_attributes

    names = [
        "userId",
        "tracestate",
        "traceparent",
        "intentType",
        "priority",
        "fleetSignature",
        "sourceMessageId",
        "errorClass",
        "errorCode",
        "errorMessage",
        "extra",
    ]
    attrs = {n: {"DataType": "String", "StringValue": n} for n in names}
    kept = fit_attributes(attrs, 9)
    assert len(kept) == 9
    assert {"errorClass", "errorCode", "errorMessage", "sourceMessageId"} <= set(kept)
    assert {"intentType", "priority", "fleetSignature", "traceparent"} <= set(kept)
    assert "tracestate" not in kept or "userId" not in kept
    small = {"a": {"DataType": "String", "StringValue": "1"}}
    assert fit_attributes(small) is small
