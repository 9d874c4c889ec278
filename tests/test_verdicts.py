"""The consumer's pure parts: the exception table, verdicts, settling against fakes,
the handler registry, send_envelope's choice of lane and attributes, metrics."""

import json
import typing
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

import handlers
from handlers import REGISTRY, handler_for
from worker.config import Settings, load_settings
from worker.consumer.decide import Decider
from worker.consumer.outcomes import Work
from worker.consumer.settle import Settler
from worker.consumer.verdicts import (
    RULINGS,
    DeadLetter,
    Postpone,
    Retry,
    Ruling,
    Succeeded,
    error_of,
    ruling_of,
)
from worker.contract import INTENT_TYPES, INTERNAL_TYPES, Envelope, Intent
from worker.errors import (
    DeadlineExceeded,
    EnqueueRefused,
    InvalidOutput,
    LeaseHeld,
    MalformedMessage,
    NotDue,
    PermanentError,
    QueueUnavailable,
    RetryableError,
    StoreUnavailable,
    UpstreamRefused,
    UpstreamTimeout,
)
from worker.observability.metrics import Metrics
from worker.queue import QueueClient, Received
from worker.queue.lanes import Lane
from worker.store import WorkflowRef


# --- the table ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exc", "ruling"),
    [
        (TimeoutError(), "deadline"),
        (NotDue("slot later", seconds=5), "postpone"),
        (MalformedMessage("bad data", code="invalid_data"), "malformed"),
        (PermanentError("no"), "permanent"),
        (UpstreamRefused("401", code="auth"), "permanent"),
        (InvalidOutput("still invalid"), "permanent"),
        (RetryableError("later"), "retry"),
        (UpstreamTimeout("slow"), "retry"),
        (StoreUnavailable("db down"), "retry"),
        (LeaseHeld("busy", seconds_left=3), "retry"),
        (EnqueueRefused("too large"), "bug"),  # ours, but no handler should raise it
        (ValueError("oops"), "bug"),
        (KeyError("k"), "bug"),
    ],
)
def test_exception_table(exc: Exception, ruling: Ruling) -> None:
    assert ruling_of(exc) == ruling


def test_every_ruling_is_in_the_table_and_catch_all_is_last() -> None:
    assert {r for _, r in RULINGS} == set(typing.get_args(Ruling))
    assert RULINGS[-1] == (Exception, "bug")


def test_error_of_translates_what_is_not_ours() -> None:
    late = error_of(TimeoutError(), "deadline", 12)
    assert isinstance(late, DeadlineExceeded) and "12s" in str(late)
    bug = error_of(ZeroDivisionError("division by zero"), "bug", 12)
    assert bug.code == "unknown" and str(bug) == "ZeroDivisionError: division by zero"
    ours = UpstreamTimeout("slow")
    assert error_of(ours, "retry", 12) is ours


# --- registry ----------------------------------------------------------------------
def test_handlers_are_exactly_the_intent_types() -> None:
    assert set(REGISTRY) == set(INTENT_TYPES) | set(INTERNAL_TYPES)


def test_unknown_handler_is_malformed_never_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MalformedMessage) as caught:
        handler_for("teleport")
    assert caught.value.code == "unknown_intent"
    monkeypatch.delitem(handlers.REGISTRY, "content_validation")
    decider = Decider(_settings().consumer, None, None, None, "me")  # type: ignore[arg-type]
    body = {"type": "content_validation", "userId": "u", "data": {"content": "hi"}}
    verdict = decider.decode(_received(json.dumps(body)))
    assert isinstance(verdict, DeadLetter)
    assert (verdict.error_class, verdict.code, verdict.work) == (
        "malformed",
        "unknown_intent",
        None,
    )


# --- deciding ----------------------------------------------------------------------
class FakeQueue:
    """What the decider and the settler use of ``QueueClient``, recorded."""

    queue_name = "work"

    def __init__(self, redrive: int | None = 3) -> None:
        self.redrive = redrive
        self.calls: list[tuple[str, Any]] = []
        self.fail_send = False

    def max_receives_for(self, lane: str) -> int | None:
        return self.redrive

    def ordered(self, message: Received) -> bool:  # a standard queue's messages
        return False

    async def delete(self, message: Received) -> None:
        self.calls.append(("delete", message.message_id))

    async def set_visibility(self, message: Received, seconds: int) -> None:
        self.calls.append(("visibility", seconds))

    async def send(self, body: str, attributes: Any, *, delay: int = 0, lane: str = "") -> str:
        if self.fail_send:
            raise QueueUnavailable("SendMessage failed")
        self.calls.append(("send", delay))
        return "copy"

    async def move_to_dlq(self, message: Received, reason: dict[str, str]) -> None:
        self.calls.append(("dlq", reason["errorClass"]))


class FakeStore:
    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.writes: list[str] = []

    async def _write(self, what: str) -> None:
        if self.down:
            raise StoreUnavailable("connection refused")
        self.writes.append(what)

    async def complete(self, *args: Any) -> tuple[None, bool]:
        await self._write("complete")
        return None, True

    async def record_failure(self, ref: WorkflowRef, owner: str, **fields: Any) -> bool:
        await self._write(f"failure:{fields['status']}:{bool(fields['dead_letter'])}")
        return True

    async def add_dead_letter(self, row: Any) -> None:
        await self._write("dead_letter")

    async def release(self, ref: WorkflowRef, owner: str, status: str = "pending") -> None:
        await self._write(f"release:{status}")


class FakeCosts:
    def __init__(self) -> None:
        self.buffered: list[str] = []

    def add(self, ref: WorkflowRef, calls: list[Any], receive_count: int, reason: str) -> None:
        self.buffered.append(reason)


def _settings() -> Settings:
    return load_settings(max_receives=3, retry_base_seconds=1, retry_max_seconds=4)


def _received(body: str = "{}", receive_count: int = 1) -> Received:
    return Received("m-1", "r-1", body, receive_count, 0)


def _work(receive_count: int = 1, calls: int = 1) -> Work:
    intent = Intent.model_validate({"type": "message_generation", "userId": "u-1"})
    envelope = Envelope.wrap(intent)
    ref = WorkflowRef(str(envelope.workflow_id), intent.type, "u-1", "medium", envelope.trace_id)
    session = SimpleNamespace(provider="openai", calls=[SimpleNamespace(cost_usd=0.01)] * calls)
    return Work(
        _received(receive_count=receive_count),
        envelope,
        ref,
        handlers.REGISTRY[intent.type],
        session,  # type: ignore[arg-type]
    )


def _decider(queue: FakeQueue | None = None) -> Decider:
    return Decider(_settings().consumer, queue or FakeQueue(), None, None, "me")  # type: ignore[arg-type]


def test_verdicts_of_handler_exceptions() -> None:
    decider, work = _decider(), _work()
    postpone = decider.verdict_for(work, NotDue("later", seconds=7.5))
    assert isinstance(postpone, Postpone) and postpone.seconds == 7.5
    permanent = decider.verdict_for(work, UpstreamRefused("401", code="auth"))
    assert isinstance(permanent, DeadLetter) and permanent.error_class == "permanent"
    malformed = decider.verdict_for(work, MalformedMessage("bad", code="invalid_data"))
    assert isinstance(malformed, DeadLetter) and malformed.error_class == "malformed"
    bug = decider.verdict_for(work, RuntimeError("handler bug"))
    assert isinstance(bug, Retry) and bug.error.code == "unknown" and not bug.final
    assert 0.9 <= bug.delay <= 1.1  # base 1 s for the first receive, jitter 10 %
    late = decider.verdict_for(work, TimeoutError())
    assert isinstance(late, Retry) and late.error.code == "deadline"


def test_last_receive_makes_a_final_retry_without_delay() -> None:
    verdict = _decider(FakeQueue(redrive=3)).verdict_for(_work(3), UpstreamTimeout("slow"))
    assert isinstance(verdict, Retry) and verdict.final and verdict.delay == 0
    early = _decider(FakeQueue(redrive=5)).verdict_for(_work(3), UpstreamTimeout("slow"))
    assert isinstance(early, Retry) and not early.final


# --- settling ----------------------------------------------------------------------
async def _settle(verdict: Any, queue: FakeQueue, store: FakeStore) -> tuple[str, FakeCosts]:
    costs = FakeCosts()
    settler = Settler(_settings().consumer, queue, store, "me", costs)  # type: ignore[arg-type]
    outcome = await settler.settle(verdict)
    await settler.drain()
    return outcome, costs


async def test_success_is_saved_then_acknowledged() -> None:
    queue, store = FakeQueue(), FakeStore()
    outcome, costs = await _settle(Succeeded(_work(), {"ok": True}), queue, store)
    assert outcome == "completed" and store.writes == ["complete"]
    assert queue.calls == [("delete", "m-1")] and costs.buffered == []


@pytest.mark.parametrize(
    "make",
    [
        lambda: Succeeded(_work(), {"ok": True}),
        lambda: Retry(_work(), UpstreamTimeout("slow"), 2.0, False),
        lambda: Retry(_work(3), UpstreamTimeout("slow"), 0.0, True),
        lambda: DeadLetter(_received(), _work(), "permanent", PermanentError("no")),
        lambda: DeadLetter(_received(), None, "malformed", MalformedMessage("bad")),
    ],
    ids=["succeeded", "retry", "final-retry", "permanent", "malformed"],
)
async def test_a_verdict_the_store_could_not_save_is_never_acknowledged(make: Any) -> None:
    verdict = make()
    queue = FakeQueue(redrive=None)
    outcome, costs = await _settle(verdict, queue, FakeStore(down=True))
    assert outcome == "unsaved"
    assert [kind for kind, _ in queue.calls] == ["visibility"]  # back after a backoff
    spent = getattr(verdict, "work", None) is not None
    assert costs.buffered == (["connection refused"] if spent else [])


async def test_retry_sets_the_delay_and_final_retry_without_redrive_moves_to_dlq() -> None:
    queue, store = FakeQueue(), FakeStore()
    outcome, _ = await _settle(Retry(_work(), UpstreamTimeout("t"), 2.4, False), queue, store)
    assert outcome == "retried"
    assert queue.calls == [("visibility", 3)] and store.writes == ["failure:retrying:False"]
    no_redrive, store = FakeQueue(redrive=None), FakeStore()
    outcome, _ = await _settle(Retry(_work(3), UpstreamTimeout("t"), 0, True), no_redrive, store)
    assert outcome == "dead_lettered" and no_redrive.calls == [("dlq", "exhausted")]
    assert store.writes == ["failure:failed:True"]


async def test_postpone_releases_the_lease_and_replaces_the_message() -> None:
    queue, store = FakeQueue(), FakeStore()
    outcome, _ = await _settle(Postpone(_work(), 2.2), queue, store)
    assert outcome == "postponed" and store.writes == ["release:waiting"]
    assert queue.calls == [("send", 3), ("delete", "m-1")]
    queue.fail_send = True
    outcome, _ = await _settle(Postpone(_work(), 2.2), queue, FakeStore())
    assert outcome == "unsaved" and queue.calls[-1] == ("visibility", 3)


# --- send_envelope -----------------------------------------------------------------
class FakeSQS:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_message(self, **call: Any) -> dict[str, str]:
        self.sent.append(call)
        return {"MessageId": f"id-{len(self.sent)}"}

    async def send_message_batch(self, QueueUrl: str, Entries: list[Any]) -> dict[str, Any]:
        self.sent.append({"QueueUrl": QueueUrl, "Entries": Entries})
        return {"Successful": [{"Id": e["Id"], "MessageId": f"b-{e['Id']}"} for e in Entries]}


def _queue(max_bytes: int = 262_144) -> tuple[QueueClient, FakeSQS]:
    queue = QueueClient("work", "work-dlq", endpoint=None, region="us-east-1")
    queue.max_message_bytes = max_bytes
    sqs = FakeSQS()
    queue._client = sqs
    for lane in ("standard", "priority"):
        queue.lanes[lane] = Lane(lane, lane, f"url-{lane}", f"dlq-{lane}", None, None, None)  # type: ignore[arg-type]
    return queue, sqs


def _envelope(priority: str, data: dict[str, Any] | None = None) -> Envelope:
    intent = {"type": "content_planning", "userId": "u-9", "priority": priority, "data": data or {}}
    return Envelope.wrap(Intent.model_validate(intent), uuid.uuid4())


async def test_send_envelope_picks_lane_attributes_and_size_limit() -> None:
    queue, sqs = _queue()
    await queue.send_envelope(_envelope("high"), delay=30)
    await queue.send_envelope(_envelope("low"))
    high, low = sqs.sent
    assert (high["QueueUrl"], high["DelaySeconds"], low["QueueUrl"]) == (
        "url-priority",
        30,
        "url-standard",
    )
    attrs = high["MessageAttributes"]
    assert attrs["intentType"]["StringValue"] == "content_planning"
    assert attrs["priority"]["StringValue"] == "high" and "traceparent" not in attrs  # tracing off
    assert json.loads(high["MessageBody"])["intent"]["userId"] == "u-9"
    small, _ = _queue(max_bytes=1024)
    with pytest.raises(EnqueueRefused):
        await small.send_envelope(_envelope("low", {"blob": "x" * 2000}))


async def test_send_envelopes_sends_one_batch_per_lane_in_order() -> None:
    queue, sqs = _queue()
    ids = await queue.send_envelopes([_envelope("low"), _envelope("critical"), _envelope("low")])
    assert [call["QueueUrl"] for call in sqs.sent] == ["url-standard", "url-priority"]
    assert ids == ["b-0", "b-0", "b-1"]


# --- metrics -----------------------------------------------------------------------
def test_metrics_own_outcome_counts_and_the_oldest_message_age() -> None:
    metrics = Metrics()
    metrics.workflow("content_planning", "completed", 0.1)
    metrics.workflow("content_planning", "unsaved", 0.1)
    metrics.requeued()
    assert metrics.totals() == {"completed": 1, "unsaved": 1, "requeued": 1}
    metrics.message_received(2, oldest_sent_ms=100_000)
    metrics.message_received(1, oldest_sent_ms=250_000)
    metrics.sample_message_age(now=160.0)
    metrics.sample_message_age(now=170.0)  # nothing new received: no second sample
    ages = [s for (name, _, _), s in metrics.drain().items() if name.startswith("Approx")]
    assert len(ages) == 1 and ages[0].count == 1 and ages[0].total == 60.0
