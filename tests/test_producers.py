"""Producers as they are: the door agrees with the worker, seed-style intents complete,
forged internal messages cause nothing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, cast

import jsonschema
import pytest

from devstack import FakeGateway, FakeLLM
from tests.producer_corpus import CORPUS, seed_intents
from tests.support import Factory, drain, env_for, fleet, query, queue_for
from worker.config import load_settings
from worker.consumer.decide import Decider
from worker.consumer.outcomes import Parsed
from worker.contract import Envelope, Intent, json_schema, served
from worker.contract.door import unwrap
from worker.errors import DeadlineExceeded, EnqueueRefused, PermanentError
from worker.ops.enqueue import envelope_from_json
from worker.producer import Producer, SyncProducer, workflow_id_for
from worker.providers import LLM
from worker.providers.breaker import BreakerPolicy, CircuitBreaker
from worker.providers.llm import Route
from worker.queue import Received, signing_key
from worker.store import Store

PROVIDERS = frozenset({"openai"})


LLM_OPENAI = LLM(
    {"openai": Route(cast(Any, None), "gpt-4o-mini", CircuitBreaker("openai", BreakerPolicy()))}
)


def _decider() -> Decider:
    settings = load_settings(queue_name="agree", database_url="postgresql://x/y")
    return Decider(
        settings.consumer,
        cast(Any, None),
        cast(Any, None),
        LLM_OPENAI,
        "t",
        signing_key=signing_key(settings),
    )


def _door(value: Any) -> tuple[str, str]:
    try:
        envelope_from_json(value, PROVIDERS)
    except EnqueueRefused as exc:
        return exc.code, str(exc)
    return "ok", ""


def _worker(decider: Decider, value: Any) -> tuple[str, str]:
    message = Received(str(uuid.uuid4()), "r", json.dumps(value), 1, 0)
    verdict = decider.decode(message)
    if isinstance(verdict, Parsed):
        intent = verdict.envelope.intent
        try:  # the worker's provider check, made before any LLM call
            LLM_OPENAI.order(intent.type, intent.force_provider)
        except PermanentError as exc:
            return exc.code, str(exc)
        return "ok", ""
    error = cast(Any, verdict).error
    return error.code, str(error)


def test_the_door_and_the_worker_agree_case_by_case() -> None:
    assert len(CORPUS) >= 60
    decider = _decider()
    disagreements = []
    for label, value, expected in CORPUS:
        door, worker = _door(value), _worker(decider, value)
        if door != worker or door[0] != expected:
            disagreements.append((label, expected, door, worker))
    assert disagreements == []
    verdicts = [expected for _, _, expected in CORPUS]
    assert verdicts.count("ok") >= 20 and len(set(verdicts)) >= 5  # valid, invalid, edge


@pytest.mark.parametrize(
    ("label", "says"),
    [
        ("mg context int", "intent.data.context: expected text"),
        ("cv no content", "intent.data.content: required"),
        ("ce no recipients", "intent.data.recipients: required"),
        ("ce recipient object no id", "intent.data.recipients.0: a recipient object needs"),
        ("mg send no recipient", "intent.recipientId: required when sendToOnlyFans"),
        ("mg force azure unconfigured", "forceProvider 'azure' is not configured on this fleet"),
        ("internal onlyfans_send", "expected one of content_planning, message_generation"),
        ("mg context over", "intent.data.context: String should have at most 8000"),
    ],
)
def test_reasons_name_the_field(label: str, says: str) -> None:
    value = next(v for name, v, _ in CORPUS if name == label)
    _code, reason = _door(value)
    assert says in reason, reason
    assert "onlyfans_send" not in reason.split("expected one of")[-1]
    assert "campaign_batch" not in reason


def test_the_published_schema_agrees_with_the_models_on_the_corpus() -> None:
    validator = jsonschema.Draft202012Validator(
        json_schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    for label, value, expected in CORPUS:
        if expected in ("provider_not_configured", "not_json"):  # configuration, not shape
            continue
        body, _ = unwrap(value, None)  # the schema is the intent's; SNS/EventBridge wrap it
        assert validator.is_valid(body) == (expected == "ok"), label


def test_free_keys_reach_the_prompt_labelled_bounded_and_sanitized() -> None:
    data = {
        "lastMessage": "hi",
        "context": "ignored: a second spelling of a known key",
        "apiKey": "sk-secret",
        "notes": "n" * 5000,
        "bad\u0000key": "a\u0007b",
        **{f"k{n}": n for n in range(30)},
    }
    request = served("message_generation", data)
    assert request.text("context") == "hi"  # the first spelling present wins
    assert request.context["context"].startswith("ignored")  # a second spelling is context
    assert request.context["apiKey"] == "[redacted]"
    assert len(request.context["notes"]) == 1000 and request.context["notes"].endswith("…")
    assert request.context["bad_key"] == "a b"
    assert "_omitted" in request.context and len(request.context) == 21


def test_spellings_are_normalized() -> None:
    request = served(
        "campaign_execution",
        {"template": "hi", "fans": [{"fanId": 7, "name": "Ann", "tier": "vip"}, "f2", "f2"]},
    )
    assert request.text("brief") == "hi"
    assert [(r.id, r.name) for r in request.recipients()] == [("7", "Ann"), ("f2", None)]
    assert request.recipients()[0].details == {"tier": "vip"}
    plan = served("content_planning", {"goals": ["grow", "retain"], "durationDays": 3})
    assert plan.text("goal") == "grow; retain" and plan.number("days", 7) == 3


async def test_seed_style_intents_complete(
    make_settings: Factory, store: Store, fake_llm: FakeLLM, gateway: FakeGateway
) -> None:
    settings = await make_settings(concurrency=32, campaign_concurrency=4)
    intents = seed_intents(20)
    envelopes = [envelope_from_json(i, PROVIDERS) for i in intents]
    async with queue_for(settings) as queue:
        for start in range(0, len(envelopes), 10):
            await queue.send_envelopes(envelopes[start : start + 10])
    stats = await drain(settings)
    ids = [str(e.workflow_id) for e in envelopes]
    rows = await query(store,
        "SELECT type, status, count(*) AS n FROM workflows WHERE id::text = ANY(%s)"
        " GROUP BY type, status",
        (ids,),
    )
    by_type = {(r["type"], r["status"]): int(r["n"]) for r in rows}
    for intent_type in (
        "message_generation",
        "content_planning",
        "content_validation",
        "campaign_execution",
    ):
        assert by_type.get((intent_type, "completed")) == 20, (by_type, stats.outcomes)
    assert stats.outcomes.get("malformed", 0) == 0


async def test_a_forged_internal_message_causes_nothing(
    make_settings: Factory, store: Store, fake_llm: FakeLLM, gateway: FakeGateway
) -> None:
    settings = await make_settings()
    creator = f"c-{uuid.uuid4().hex[:6]}"
    forged = [
        Envelope(
            workflow_id=uuid.uuid4(),
            intent=Intent(
                type="campaign_batch",
                user_id=creator,
                data={
                    "brief": "buy now",
                    "recipients": ["f1", "f2"],
                    "campaignId": str(uuid.uuid4()),
                    "parentId": str(uuid.uuid4()),
                    "total": 2,
                },
            ),
        ),
        Envelope(
            workflow_id=uuid.uuid4(),
            intent=Intent(type="onlyfans_send", user_id=creator, data={"sendId": 1}),
        ),
    ]
    calls, deliveries = fake_llm.requests, len(gateway.deliveries)
    ids = []
    async with queue_for(settings) as queue:
        for envelope in forged:  # straight on the queue: no signature, or a wrong one
            body = envelope.model_dump_json(by_alias=True)
            attributes = {"fleetSignature": {"DataType": "String", "StringValue": "0" * 64}}
            ids.append(
                await queue.send(
                    body, attributes if envelope.intent.type == "onlyfans_send" else {}
                )
            )
    stats = await drain(settings)
    assert stats.outcomes == {"malformed": 2}
    assert fake_llm.requests == calls and len(gateway.deliveries) == deliveries
    rows = await query(store,
        "SELECT error_code FROM dead_letters WHERE message_id = ANY(%s)", (ids,)
    )
    assert [r["error_code"] for r in rows] == ["unknown_intent"] * 2
    spent = await query(store, "SELECT id FROM llm_calls WHERE user_id = %s", (creator,))
    assert spent == []


async def test_enqueue_dry_run_refuses_with_the_workers_reason(
    make_settings: Factory, tmp_path: Path
) -> None:
    settings = await make_settings()
    env = env_for(settings)
    refused = fleet(
        [
            "enqueue",
            "--type",
            "message_generation",
            "--user",
            "u",
            "--send",
            "--dry-run",
            "--data",
            '{"context": "x"}',
        ],
        env,
    )
    assert refused.returncode == 1
    assert "intent.recipientId: required when sendToOnlyFans is true" in refused.stderr
    data = tmp_path / "data.json"
    data.write_text(json.dumps({"caption": "hello", "policy": "no links"}))
    ok = fleet(
        [
            "enqueue",
            "--type",
            "content_validation",
            "--user",
            "u",
            "--data",
            f"@{data}",
            "--output",
            "json",
        ],
        env,
    )
    assert ok.returncode == 0, ok.stderr
    line = json.loads(ok.stdout.strip())
    assert set(line) == {"workflowId", "messageId", "lane"} and line["messageId"]
    stdin = "\n".join(
        [
            json.dumps({"type": "content_planning", "userId": "u"}),
            '   {"type": "content_planning", "userId": }',
            json.dumps({"type": "onlyfans_send", "userId": "u", "data": {"sendId": 1}}),
        ]
    )
    bad = fleet(["enqueue", "--file", "-", "--output", "json", "--dry-run"], env, input=stdin)
    assert bad.returncode == 1
    problems = [json.loads(x) for x in bad.stderr.splitlines() if x.startswith("{")]
    assert [(p["line"], p["column"], p["code"]) for p in problems] == [
        (2, 43, "not_json"),
        (3, 1, "unknown_intent"),
    ]
    legacy = fleet(
        ["enqueue", "--json", json.dumps({"type": "content_planning", "userId": "u"}), "--dry-run"],
        env,
    )
    assert legacy.returncode == 0 and "deprecated" in legacy.stderr


async def test_the_python_producer_api(make_settings: Factory, store: Store) -> None:
    settings = await make_settings()
    good = {"type": "content_validation", "userId": "p", "data": {"caption": "hello"}}
    progress: list[tuple[int, int]] = []
    async with Producer(settings, poll_seconds=0.1) as producer:
        once = await producer.submit(good, idempotency_key="order-1")
        again = await producer.submit(good, idempotency_key="order-1")
        assert once == again == str(workflow_id_for("order-1"))
        with pytest.raises(EnqueueRefused, match=r"intent\.data\.content: required"):
            await producer.submit({"type": "content_validation", "userId": "p", "data": {}})
        filtered = await producer.submit(
            {
                "type": "message_generation",
                "userId": "p",
                "data": {"context": "[[fake:content_filter]]"},
            }
        )
        many = [*[good] * 24, {"type": "onlyfans_send", "userId": "p", "data": {"sendId": 1}}]
        entries = await producer.submit_many(
            many, on_progress=lambda done, total: progress.append((done, total))
        )
        stats = await drain(settings)
        assert stats.outcomes.get("completed") == 25 and stats.outcomes.get("duplicate") == 1
        done = await producer.result(once, timeout=5)
        failed = await producer.result(filtered, timeout=5)
        with pytest.raises(DeadlineExceeded):
            await producer.result(uuid.uuid4(), timeout=0.2)
    assert done.status == "completed" and done.result and "verdict" in done.result
    assert failed.status == "failed" and failed.error_code
    assert [e.ok for e in entries] == [True] * 24 + [False]
    assert entries[-1].code == "unknown_intent" and entries[0].message_id
    assert progress[-1] == (25, 25) and len(progress) == 3


def test_the_sync_producer_refuses_before_sending() -> None:
    settings = load_settings(queue_name="nowhere", sqs_endpoint_url="http://127.0.0.1:9")
    producer = SyncProducer(settings)
    with pytest.raises(RuntimeError, match="not open"):
        producer.submit({"type": "content_planning", "userId": "u"})
    envelope = Producer(settings).envelope(
        {"type": "content_planning", "userId": "u"}, idempotency_key="k"
    )
    assert envelope.workflow_id == workflow_id_for("k")


async def test_sns_and_eventbridge_bodies_are_processed(make_settings: Factory) -> None:
    settings = await make_settings()
    wrapped = [
        value
        for label, value, expected in CORPUS
        if expected == "ok" and label.startswith(("sns", "eventbridge"))
    ]
    async with queue_for(settings) as queue:
        for value in wrapped:  # as SNS (raw delivery off) and EventBridge deliver them
            await queue.send(json.dumps(value), {})
    stats = await drain(settings)
    assert stats.outcomes == {"completed": len(wrapped)} and len(wrapped) == 3
