"""The worker against LocalStack SQS, real PostgreSQL and the fake OpenAI."""

from __future__ import annotations

import asyncio
import json
import uuid
from decimal import Decimal

from devstack import FakeLLM
from tests.support import Factory, dlq_messages, drain, envelope, query, send_bodies
from worker.store import CallRecord, Store, WorkflowRef


async def calls_of(store: Store, workflow_id: str) -> list[dict]:
    return await query(
        store, "SELECT * FROM llm_calls WHERE workflow_id = %s ORDER BY id", (workflow_id,)
    )


async def test_each_intent_type_completes(make_settings: Factory, store: Store) -> None:
    settings = await make_settings()
    envs = [
        envelope(
            {
                "type": "content_planning",
                "userId": "u1",
                "platforms": ["onlyfans"],
                "data": {"goal": "launch", "days": 3},
            }
        ),
        envelope(
            {
                "type": "message_generation",
                "userId": "u1",
                "recipientId": "fan-1",
                "data": {"context": "renewal", "fanName": "Ada"},
            }
        ),
        envelope(
            {"type": "content_validation", "userId": "u2", "data": {"content": "new set friday"}}
        ),
        envelope(
            {
                "type": "campaign_execution",
                "userId": "u2",
                "data": {"brief": "promo", "recipients": ["a", "b", "c"]},
            }
        ),
    ]
    await send_bodies(settings, list(envs))
    stats = await drain(settings)
    assert stats.outcomes.get("completed") == 4 + 3  # the campaign sends to 3 fans
    rows = {e.intent.type: await store.workflow(str(e.workflow_id)) for e in envs}
    assert all(row and row["status"] == "completed" for row in rows.values())
    assert rows["content_planning"]["result"]["plan"]["items"]
    assert "Ada" in rows["message_generation"]["result"]["message"]
    assert isinstance(rows["content_validation"]["result"]["verdict"]["approved"], bool)
    assert [m["recipientId"] for m in rows["campaign_execution"]["result"]["messages"]] == [
        "a",
        "b",
        "c",
    ]
    campaign_calls = await calls_of(store, str(envs[3].workflow_id))
    assert len(campaign_calls) == 3
    for env in envs:
        for call in await calls_of(store, str(env.workflow_id)):
            assert call["usage_source"] == "api" and call["prompt_tokens"] > 0
            assert call["cost_usd"] > 0 and call["provider"] == "openai"
            assert call["trace_id"] == env.trace_id


async def test_retry_then_success(make_settings: Factory, store: Store) -> None:
    settings = await make_settings()
    key = uuid.uuid4().hex
    env = envelope(
        {
            "type": "message_generation",
            "userId": "u3",
            "data": {"context": f"[[fake:transient:{key}:1]] hello"},
        }
    )
    await send_bodies(settings, [env])
    stats = await drain(settings)
    assert stats.outcomes == {"retried": 1, "completed": 1}
    row = await store.workflow(str(env.workflow_id))
    assert row is not None and row["status"] == "completed" and row["attempts"] == 2
    calls = await calls_of(store, str(env.workflow_id))
    assert [(c["outcome"], c["receive_count"]) for c in calls] == [("error", 1), ("ok", 2)]
    assert calls[0]["error_code"] == "server" and calls[0]["cost_usd"] == 0


async def test_in_process_retries_absorb_a_transient_fault(
    make_settings: Factory, store: Store
) -> None:
    settings = await make_settings(llm_retry_delays=(0.01, 0.01))
    key = uuid.uuid4().hex
    env = envelope(
        {
            "type": "message_generation",
            "userId": "u3",
            "data": {"context": f"[[fake:rate_limit:{key}:2]] hello"},
        }
    )
    await send_bodies(settings, [env])
    stats = await drain(settings)
    assert stats.outcomes == {"completed": 1}
    calls = await calls_of(store, str(env.workflow_id))
    assert [c["attempt"] for c in calls] == [1, 2, 3]
    assert [c["error_code"] for c in calls] == ["rate_limit", "rate_limit", None]


async def test_retry_exhaustion_ends_in_the_dlq(make_settings: Factory, store: Store) -> None:
    settings = await make_settings(max_receives=2)
    key = uuid.uuid4().hex
    env = envelope(
        {
            "type": "content_validation",
            "userId": "u4",
            "data": {"content": f"[[fake:transient:{key}:99]]"},
        }
    )
    await send_bodies(settings, [env])
    stats = await drain(settings)
    assert stats.outcomes == {"retried": 1, "dead_lettered": 1}
    row = await store.workflow(str(env.workflow_id))
    assert row is not None and row["status"] == "failed" and row["error_code"] == "server"
    letters = await query(
        store, "SELECT * FROM dead_letters WHERE workflow_id = %s", (str(env.workflow_id),)
    )
    assert [(d["error_class"], d["receive_count"]) for d in letters] == [("exhausted", 2)]
    moved = await dlq_messages(settings)
    assert len(moved) == 1 and json.loads(moved[0].body)["workflowId"] == str(env.workflow_id)
    assert moved[0].message_id == letters[0]["message_id"]


async def test_permanent_error_goes_to_the_dlq_at_once(
    make_settings: Factory, store: Store, fake_llm: FakeLLM
) -> None:
    settings = await make_settings()
    env = envelope(
        {"type": "message_generation", "userId": "u5", "data": {"context": "[[fake:reject]]"}}
    )
    await send_bodies(settings, [env])
    stats = await drain(settings)
    assert stats.outcomes == {"dead_lettered": 1}
    row = await store.workflow(str(env.workflow_id))
    assert row is not None and row["status"] == "failed" and row["error_code"] == "validation"
    moved = await dlq_messages(settings)
    assert len(moved) == 1
    assert moved[0].attributes["errorClass"] == "permanent"
    assert moved[0].attributes["errorCode"] == "validation"
    assert moved[0].attributes["intentType"] == "message_generation"


async def test_invalid_output_is_repaired_once(make_settings: Factory, store: Store) -> None:
    settings = await make_settings()
    repaired = envelope(
        {
            "type": "content_validation",
            "userId": "u6",
            "data": {"content": f"[[fake:bad_output:{uuid.uuid4().hex}:1]]"},
        }
    )
    hopeless = envelope(
        {
            "type": "content_validation",
            "userId": "u6",
            "data": {"content": f"[[fake:bad_output:{uuid.uuid4().hex}:2]]"},
        }
    )
    await send_bodies(settings, [repaired, hopeless])
    stats = await drain(settings)
    assert stats.outcomes == {"completed": 1, "dead_lettered": 1}
    assert len(await calls_of(store, str(repaired.workflow_id))) == 2
    failed = await store.workflow(str(hopeless.workflow_id))
    assert failed is not None and failed["error_code"] == "invalid_output"


async def test_malformed_bodies_go_to_the_dlq_and_work_goes_on(
    make_settings: Factory, store: Store
) -> None:
    settings = await make_settings()
    good = envelope({"type": "message_generation", "userId": "u7", "data": {"context": "x"}})
    bad = [
        "not json at all",
        json.dumps({"type": "message_generation", "userId": 42}),
        json.dumps({"type": "teleport", "userId": "u7"}),
        json.dumps({"userId": "u7"}),
        json.dumps({"type": "campaign_execution", "userId": "u7", "data": {"brief": "x"}}),
    ]
    await send_bodies(settings, [*bad, good])
    stats = await drain(settings)
    assert stats.outcomes.get("completed") == 1
    assert stats.outcomes.get("malformed") == 5
    moved = await dlq_messages(settings)
    letters = await query(
        store,
        "SELECT error_code, error_message FROM dead_letters WHERE message_id = ANY(%s)",
        ([m.attributes["sourceMessageId"] for m in moved],),
    )
    codes = sorted(d["error_code"] for d in letters)
    assert codes == ["invalid_data", "not_json", "schema", "schema", "unknown_intent"]
    reasons = " ".join(d["error_message"] for d in letters)
    assert "userId" in reasons and "intent.data.recipients" in reasons


async def test_redelivered_completed_workflow_is_not_rerun(
    make_settings: Factory, store: Store, fake_llm: FakeLLM
) -> None:
    settings = await make_settings()
    env = envelope({"type": "message_generation", "userId": "u8", "data": {"context": "once"}})
    await send_bodies(settings, [env])
    await drain(settings)
    before = fake_llm.requests
    await send_bodies(settings, [env, env])
    stats = await drain(settings)
    assert stats.outcomes == {"duplicate": 2}
    assert fake_llm.requests == before
    row = await store.workflow(str(env.workflow_id))
    assert row is not None and row["attempts"] == 1
    assert len(await calls_of(store, str(env.workflow_id))) == 1


async def test_heartbeat_keeps_a_slow_handler_invisible(
    make_settings: Factory, store: Store
) -> None:
    settings = await make_settings(visibility_timeout=2, heartbeat_interval=0.5)
    env = envelope(
        {
            "type": "message_generation",
            "userId": "u9",
            "data": {"context": "[[fake:slow:4500]] take your time"},
        }
    )
    await send_bodies(settings, [env])
    stats = await drain(settings)
    assert stats.received == 1 and stats.outcomes == {"completed": 1}
    assert len(await calls_of(store, str(env.workflow_id))) == 1


async def test_complete_writes_result_and_costs_and_survives_a_refused_cost_row(
    store: Store,
) -> None:
    """The one-statement completion, and its fallback when the database refuses a cost row."""

    def call(source: str) -> CallRecord:
        return CallRecord(
            provider="openai",
            model="gpt-4o-mini",
            prompt_tokens=12,
            completion_tokens=34,
            usage_source=source,  # type: ignore[arg-type]
            cost_usd=Decimal("0.00001234"),
            price_version="test",
            duration_ms=5,
            attempt=1,
            outcome="ok",
        )

    async def run(calls: list[CallRecord]) -> tuple[str, tuple[bool, bool]]:
        ref = WorkflowRef(str(uuid.uuid4()), "message_generation", "u-store", "normal", "t-1")
        assert (await store.claim(ref, "owner-1", 30)).outcome == "claimed"
        return ref.id, await store.complete(ref, "owner-1", {"ok": True}, "openai", calls, 2)

    good, outcome = await run([call("api"), call("estimated")])
    assert outcome == (True, True)
    rows = await calls_of(store, good)
    assert [(r["usage_source"], r["receive_count"], r["cost_usd"]) for r in rows] == [
        ("api", 2, Decimal("0.00001234")),
        ("estimated", 2, Decimal("0.00001234")),
    ]
    again = await store.complete(
        WorkflowRef(good, "message_generation", "u-store", "normal", "t-1"),
        "owner-1",
        {"ok": True},
        "openai",
        [],
        3,
    )
    assert again == (False, True)  # completed once only

    refused, outcome = await run([call("api"), call("bogus")])  # violates the CHECK
    assert outcome == (True, False)  # the result is saved; the caller buffers the costs
    assert await calls_of(store, refused) == []
    status = await query(store, "SELECT status, result FROM workflows WHERE id = %s", (refused,))
    assert status == [{"status": "completed", "result": {"ok": True}}]


async def test_group_commit_gives_each_workflow_its_own_outcome(store: Store) -> None:
    """Claims and completions made together share statements, not outcomes."""
    refs = [
        WorkflowRef(str(uuid.uuid4()), "message_generation", f"u-g{i}", "normal", f"t-{i}")
        for i in range(30)
    ]
    call = CallRecord("openai", "gpt-4o-mini", 1, 2, "api", Decimal("0.001"), "v", 3, 1, "ok")
    assert (await store.claim(refs[0], "other", 30)).outcome == "claimed"
    await store.complete(refs[0], "other", {"n": 0}, "openai", [call], 1)
    assert (await store.claim(refs[1], "other", 30)).outcome == "claimed"

    claims = await asyncio.gather(*(store.claim(r, "me", 30) for r in [*refs, refs[5]]))
    assert claims[0].outcome == "completed"
    assert claims[1].outcome == "held" and claims[1].seconds_left > 20
    assert [c.outcome for c in claims[2:30]] == ["claimed"] * 28
    assert claims[30].outcome == "held"  # the same workflow twice: only one runs it

    done = await asyncio.gather(
        *(
            store.complete(r, "me", {"n": i}, "openai", [call], 1)
            for i, r in enumerate(refs)
            if i != 1  # held by another worker: not ours to complete
        )
    )
    assert done[0] == (False, True)  # completed before: not again (its cost is still kept)
    assert all(d == (True, True) for d in done[1:])
    rows = await query(
        store,
        "SELECT id, result FROM workflows WHERE id = ANY(%s) AND status = 'completed'",
        ([r.id for r in refs],),
    )
    assert {r["id"]: r["result"]["n"] for r in rows} == {
        r.id: i for i, r in enumerate(refs) if i != 1
    } | {refs[0].id: 0}
    costs = await query(
        store,
        "SELECT count(*) AS n FROM llm_calls WHERE workflow_id = ANY(%s)",
        ([r.id for r in refs],),
    )
    assert costs[0]["n"] == 30
