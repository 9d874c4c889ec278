"""FIFO fleets (issue 13): per-group order across processes, retries, a poison message,
SIGKILL; SQS's deduplication; sends on their standard lane; replay into the group. And
the pure pieces: group keys, send fields, batch runs, the names of a FIFO fleet."""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import uuid
from typing import Any

import pytest

from devstack import FakeGateway
from tests.support import (
    API_KEY,
    Factory,
    LoggedProcess,
    drain,
    env_for,
    envelope,
    fleet,
    query,
    queue_for,
    run_until,
)
from worker.batcher import Batcher
from worker.config import load_settings
from worker.consumer.ordered import runs_of
from worker.errors import ConfigError
from worker.ops.dlq import DlqWorkbench
from worker.producer import Producer
from worker.queue import QueueClient, Received
from worker.queue.keys import Keys, group_of, send_fields
from worker.queue.lanes import Lane
from worker.store import Store

TOLERANCE = 0.05


def intent(user: str, seq: int, *markers: str) -> dict[str, Any]:
    return {
        "type": "message_generation",
        "userId": user,
        "data": {"context": f"step {seq} {' '.join(markers)}", "seq": seq},
    }


async def statuses(store: Store, ids: list[str]) -> list[dict[str, Any]]:
    return await query(
        store,
        "SELECT id, status, completed_at FROM workflows WHERE id = ANY(%s) ORDER BY completed_at",
        (ids,),
    )


async def wait_for(predicate: Any, within: float) -> None:
    async with asyncio.timeout(within):
        while not await predicate():  # noqa: ASYNC110 - the state is in other processes
            await asyncio.sleep(0.3)


# --- pure ---------------------------------------------------------------------------
def test_group_of_each_mode() -> None:
    env = envelope(
        {
            "type": "content_validation",
            "userId": "u 1",
            "data": {"content": "x", "campaignId": "c9", "shop": "s2"},
        }
    )
    assert group_of(env, "user") == "u_1"  # SQS's alphabet: no spaces
    assert group_of(env, "campaign") == "c9"
    assert group_of(env, "data:shop") == "s2"
    assert group_of(env, "data:missing") == "u_1"  # falls back to the user
    assert group_of(env, "one") == "fleet"
    assert group_of(env, "none") is None


def test_send_fields_by_queue_kind() -> None:
    keys = Keys("u1", "wf-1")
    assert send_fields(keys, fifo=True) == {
        "MessageGroupId": "u1",
        "MessageDeduplicationId": "wf-1",
    }
    assert send_fields(keys, fifo=False, delay=5) == {"DelaySeconds": 5, "MessageGroupId": "u1"}
    assert send_fields(Keys(None), fifo=False) == {}
    fresh = send_fields(Keys("u1"), fifo=True)["MessageDeduplicationId"]
    assert fresh != send_fields(Keys("u1"), fifo=True)["MessageDeduplicationId"]
    with pytest.raises(ValueError, match="FIFO"):
        send_fields(keys, fifo=True, delay=3)


def test_runs_keep_each_group_in_receive_order() -> None:
    def msg(n: int, group: str | None) -> Received:
        return Received(str(n), f"r{n}", "{}", 1, 0, group_id=group)

    batch = [msg(1, "a"), msg(2, "b"), msg(3, "a"), msg(4, None), msg(5, "a")]
    runs = runs_of(batch, lambda m: m.group_id is not None)
    assert [[m.message_id for m in run] for run in runs] == [["1", "3", "5"], ["2"], ["4"]]
    alone = runs_of(batch, lambda m: False)  # a standard queue: every message on its own
    assert [len(run) for run in alone] == [1] * 5


def test_fifo_names_and_rules() -> None:
    settings = load_settings(queue_name="orders.fifo")
    assert settings.dead_letter_queue_name == "orders-dlq.fifo"
    assert settings.priority_lane_name == "orders-priority"  # the standard side lane
    with pytest.raises(ConfigError, match="FLEET_MESSAGE_GROUP"):
        load_settings(queue_name="orders.fifo", message_group="none")
    with pytest.raises(ConfigError, match="FLEET_PRIORITY_LANES"):
        load_settings(queue_name="orders.fifo", priority_lanes=False)
    with pytest.raises(ConfigError, match="FLEET_MESSAGE_GROUP"):
        load_settings(message_group="tenant")


# --- on LocalStack ------------------------------------------------------------------
def fifo_name() -> str:
    return f"t-{uuid.uuid4().hex[:12]}.fifo"


@pytest.mark.timeout(180)
async def test_order_per_user_across_two_processes_retries_poison_and_sigkill(
    make_settings: Factory, store: Store
) -> None:
    settings = await make_settings(queue_name=fifo_name(), max_receives=10)
    tag = uuid.uuid4().hex[:6]
    users = [f"u{n}-{tag}" for n in range(3)]
    poison = (users[1], 12)
    intents = []
    for seq, user in itertools.product(range(30), users):
        markers = []
        if (user, seq) == poison:
            markers.append("[[fake:reject]]")  # a 400: permanent, to the DLQ at once
        elif seq % 7 == 3:  # a transient fault: this message retries through SQS
            markers.append(f"[[fake:transient:{user}-{seq}:1]]")
        elif seq % 5 == 0:  # slow: run side by side, the ones after it would finish first
            markers.append("[[fake:slow:400]]")
        intents.append(intent(user, seq, *markers))
    async with Producer(settings) as producer:
        entries = await producer.submit_many(intents)
    assert all(e.ok for e in entries)
    ids = {
        (i["userId"], i["data"]["seq"]): e.workflow_id
        for i, e in zip(intents, entries, strict=True)
    }
    seq_of = {wid: key for key, wid in ids.items()}
    everyone = [str(w) for w in ids.values()]

    async def ended(count: int) -> bool:
        rows = await statuses(store, everyone)
        return sum(r["status"] in ("completed", "failed") for r in rows) >= count

    env = env_for(settings)
    workers = [await LoggedProcess.start(["run"], env) for _ in range(2)]
    try:
        await wait_for(lambda: ended(30), within=60)
        workers[0].send_signal(signal.SIGKILL)  # mid-run: its messages come back
        await workers[0].finish()
        workers.append(await LoggedProcess.start(["run"], env))
        await wait_for(lambda: ended(90), within=90)
    finally:
        codes = [(await w.finish(signal.SIGTERM, within=30))[0] for w in workers[1:]]
    assert codes == [0, 0]
    rows = await statuses(store, everyone)
    failed = [seq_of[r["id"]] for r in rows if r["status"] == "failed"]
    assert failed == [poison]
    for user in users:
        done = [
            seq_of[r["id"]][1]
            for r in rows
            if r["status"] == "completed" and seq_of[r["id"]][0] == user
        ]
        expected = [s for s in range(30) if (user, s) != poison]
        assert done == expected, f"{user} completed out of order"

    async with queue_for(settings) as queue:
        workbench = DlqWorkbench(queue, store)
        entries_dlq = await workbench.scan(hold_seconds=5)
        assert [e.workflow_id for e in entries_dlq] == [ids[poison]]
        assert entries_dlq[0].message.group_id == poison[0]  # the FIFO DLQ kept the group
        await workbench.replay(entries_dlq)
        replayed = await _replayed(queue)
        assert replayed.group_id == poison[0]  # back in its group
        assert ids[poison] in replayed.body
        await queue.purge()


@pytest.mark.timeout(180)
async def test_order_per_user_holds_when_a_worker_is_stopped_mid_run(
    make_settings: Factory, store: Store
) -> None:
    """SIGTERM with a short grace: runs in flight are cancelled and released, runs
    received after the stop go back whole; twice, while another worker takes them."""
    settings = await make_settings(queue_name=fifo_name(), shutdown_grace=0.5)
    tag = uuid.uuid4().hex[:6]
    users = [f"s{n}-{tag}" for n in range(4)]
    intents = [
        intent(user, seq, "[[fake:slow:250]]")
        for seq, user in itertools.product(range(16), users)
    ]
    async with Producer(settings) as producer:
        entries = await producer.submit_many(intents)
    assert all(e.ok for e in entries)
    seq_of = {
        str(e.workflow_id): (i["userId"], i["data"]["seq"])
        for i, e in zip(intents, entries, strict=True)
    }
    everyone = list(seq_of)

    async def ended(count: int) -> bool:
        rows = await statuses(store, everyone)
        return sum(r["status"] == "completed" for r in rows) >= count

    env = env_for(settings)
    workers = [await LoggedProcess.start(["run"], env) for _ in range(2)]
    codes: list[int] = []
    try:
        for target in (12, 32):
            await wait_for(lambda target=target: ended(target), within=60)
            stopped = workers.pop(0)
            codes.append((await stopped.finish(signal.SIGTERM, within=30))[0])  # mid-run
            workers.append(await LoggedProcess.start(["run"], env))
        await wait_for(lambda: ended(64), within=90)
    finally:
        codes += [(await w.finish(signal.SIGTERM, within=30))[0] for w in workers]
    assert codes == [0, 0, 0, 0]
    rows = await statuses(store, everyone)
    for user in users:
        done = [seq_of[r["id"]][1] for r in rows if seq_of[r["id"]][0] == user]
        assert done == list(range(16)), f"{user} completed out of order"


async def _replayed(queue: QueueClient) -> Received:
    """The replayed copy from the FIFO work queue. A SIGKILLed worker's lost delete can
    leave a completed message ahead of it in its group: deleted here, as a worker would
    after finding it a duplicate."""
    for _ in range(10):
        for message in await queue.receive(10, 2):
            if "replayCount" in message.attributes:
                return message
            await queue.delete(message)
    raise AssertionError("the replayed message never came back")


async def test_a_duplicate_send_within_the_window_runs_once(
    make_settings: Factory, store: Store
) -> None:
    settings = await make_settings(queue_name=fifo_name())
    workflow_id = uuid.uuid4()
    async with Producer(settings) as producer:
        for _ in range(2):  # a producer's retry of the same workflow
            await producer.submit(intent("dup-user", 1), workflow_id=workflow_id)
    envelope_json = json.dumps(
        {"version": 1, "workflowId": str(workflow_id), "intent": intent("dup-user", 1)}
    )
    sent = fleet(["enqueue", "--intent", envelope_json], env_for(settings))  # the CLI door
    assert sent.returncode == 0, sent.stderr
    stats = await drain(settings)
    assert stats.received == 1  # SQS dropped both copies: the claim never saw them
    assert stats.outcomes == {"completed": 1}
    row = await store.workflow(str(workflow_id))
    assert row is not None and row["status"] == "completed"
    status = fleet(["status", "-o", "json"], env_for(settings))
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["queueKind"] == "fifo"


@pytest.mark.timeout(120)
async def test_sends_on_a_fifo_fleet_keep_their_spacing(
    make_settings: Factory, store: Store
) -> None:
    with FakeGateway(token=API_KEY) as gateway:
        settings = await make_settings(
            queue_name=fifo_name(), send_gateway_url=gateway.endpoint, send_spacing=2
        )
        creator = f"c-{uuid.uuid4().hex[:6]}"
        async with Producer(settings) as producer:
            await producer.submit_many(
                {
                    "type": "message_generation",
                    "userId": creator,
                    "recipientId": "fan-1",
                    "sendToOnlyFans": True,
                    "data": {"context": f"msg {i}"},
                }
                for i in range(4)
            )

        async def all_sent() -> bool:
            return len(gateway.deliveries) >= 4

        stats = await run_until(settings, all_sent, within=60)
        times = next(iter(gateway.per_pair().values()))
        assert len(times) == 4
        assert min(b - a for a, b in itertools.pairwise(times)) >= 2 - TOLERANCE
        assert stats.outcomes.get("completed", 0) >= 8  # 4 generations + 4 sends
        async with queue_for(settings) as queue:
            assert queue.lanes["priority"].fifo is False  # sends travel on the standard lane


def _queue(
    batches: list[list[tuple[str, int]]] | None = None,
) -> tuple[QueueClient, list[tuple[str, int]]]:
    """A QueueClient whose FIFO lane records its ChangeMessageVisibilityBatch entries
    (and, given ``batches``, each call's entries)."""
    calls: list[tuple[str, int]] = []

    async def visibility(batch: list[tuple[Received, int]]) -> list[BaseException | None]:
        entries = [(m.message_id, seconds) for m, seconds in batch]
        calls.extend(entries)
        if batches is not None:
            batches.append(entries)
        return [None] * len(batch)

    async def deletes(batch: list[Received]) -> list[BaseException | None]:
        return [None] * len(batch)

    queue = QueueClient("w.fifo", "w-dlq.fifo", endpoint=None, region="us-east-1")
    queue.lanes["standard"] = Lane(
        "standard", "w.fifo", "u/w.fifo", "u/w-dlq.fifo", 5, Batcher(deletes), Batcher(visibility)
    )
    return queue, calls


class _Heartbeat:
    def __init__(self) -> None:
        self.held: set[str] = set()

    def hold(self, message: Received, seconds: int) -> None:
        self.held.add(message.message_id)

    def untrack(self, message: Received) -> None:
        self.held.discard(message.message_id)


class _Processor:
    def __init__(self, queue: QueueClient, outcomes: dict[str, tuple[str, int | None]]) -> None:
        self.queue, self.outcomes, self.ran = queue, outcomes, []

    async def process(self, message: Received) -> str:
        self.ran.append(message.message_id)
        outcome, hide = self.outcomes.get(message.message_id, ("completed", None))
        if hide is not None:
            await self.queue.set_visibility(message, hide)
        return outcome


def _ordered(
    outcomes: dict[str, tuple[str, int | None]],
) -> tuple[Any, list[tuple[str, int]], _Processor]:
    from worker.consumer.fairness import Fairness
    from worker.consumer.ordered import Ordered

    settings = load_settings(visibility_timeout=30, heartbeat_interval=10).consumer
    queue, calls = _queue()
    processor = _Processor(queue, outcomes)
    ordered = Ordered(settings, queue, processor, _Heartbeat(), Fairness(16, 1.0))  # type: ignore[arg-type]
    return ordered, calls, processor


def _run(n: int) -> list[Received]:
    return [Received(str(i), f"r{i}", "{}", 1, 0, group_id="g") for i in range(n)]


async def test_a_run_stops_at_a_retry_and_puts_the_rest_back_a_second_earlier() -> None:
    ordered, calls, processor = _ordered({"1": ("retried", 5), "3": ("completed", None)})
    slots: list[int] = []
    await ordered.run(_run(4), lambda: False, lambda: slots.append(1))
    assert processor.ran == ["0", "1"]  # nothing after the retried one runs
    assert calls == [("2", 4), ("3", 4), ("1", 5)]  # one call: the rest first, a second less
    assert len(slots) == 3  # every slot but the task's own is given back


async def test_a_run_goes_on_past_a_dead_letter_and_a_short_hide_becomes_two_seconds() -> None:
    ordered, calls, processor = _ordered({"0": ("dead_lettered", None), "1": ("retried", 1)})
    await ordered.run(_run(3), lambda: False, lambda: None)
    assert processor.ran == ["0", "1"]  # the poison left; the next one ran
    assert calls == [("2", 1), ("1", 2)]


async def test_a_stopping_run_releases_what_it_did_not_start() -> None:
    ordered, calls, processor = _ordered({"1": ("released", 0)})
    await ordered.run(_run(3), lambda: True, lambda: None)
    assert processor.ran == [] and calls == [("0", 1), ("1", 1), ("2", 1)]


async def test_a_released_head_goes_back_with_its_run_hidden_a_second() -> None:
    ordered, calls, processor = _ordered({"1": ("released", 0)})
    await ordered.run(_run(3), lambda: False, lambda: None)
    assert processor.ran == ["0", "1"] and calls == [("1", 1), ("2", 1)]


async def test_a_run_cancelled_inside_a_message_releases_it_with_its_run() -> None:
    from worker.consumer.fairness import Fairness
    from worker.consumer.ordered import Ordered

    batches: list[list[tuple[str, int]]] = []
    queue, _ = _queue(batches)
    started = asyncio.Event()

    class Stuck:
        async def process(self, message: Received) -> str:
            started.set()
            await asyncio.sleep(30)  # cancelled before a verdict: nothing released it
            return "completed"

    settings = load_settings(visibility_timeout=30, heartbeat_interval=10).consumer
    ordered = Ordered(settings, queue, Stuck(), _Heartbeat(), Fairness(16, 1.0))  # type: ignore[arg-type]
    task = asyncio.create_task(ordered.run(_run(3), lambda: False, lambda: None))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert batches == [[("0", 1), ("1", 1), ("2", 1)]]  # one call, the head first


async def test_messages_submitted_together_leave_in_one_call_in_order() -> None:
    batches: list[list[tuple[str, int]]] = []
    queue, _ = _queue(batches)
    run = _run(4)
    lone = Received("x", "rx", "{}", 1, 0, group_id="other")
    waiting = asyncio.create_task(queue.set_visibility(lone, 7))  # lingers for its batch
    await asyncio.sleep(0)
    queue.hold_behind(run[0], run[1:])
    await queue.set_visibility(run[0], 9)
    await waiting
    assert batches == [[("x", 7)], [("1", 8), ("2", 8), ("3", 8), ("0", 9)]]


async def test_standard_queue_messages_carry_the_tenant_key(make_settings: Factory) -> None:
    settings = await make_settings()  # a standard queue, FLEET_MESSAGE_GROUP=user
    async with Producer(settings) as producer:
        await producer.submit(intent("tenant-7", 1))
        await producer.submit({**intent("tenant-8", 1), "priority": "high"})  # priority lane
    async with queue_for(settings) as queue:
        got = await queue.receive(10, 1) + await queue.receive(10, 1, "priority")
        assert sorted((m.lane, m.group_id) for m in got) == [
            ("priority", "tenant-8"),
            ("standard", "tenant-7"),
        ]
        assert not any(queue.ordered(m) for m in got)  # a tenant key, not an order
        await queue.move_to_dlq(got[0], {"errorClass": "permanent"})
        moved = await queue.receive_dlq(10, 1, lane=got[0].lane)
        assert [m.group_id for m in moved] == [got[0].group_id]  # DLQ copies keep it
