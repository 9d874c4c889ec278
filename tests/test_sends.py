"""OnlyFans sends: spacing across processes, exactly-once delivery, debounce, campaigns."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
import uuid

import pytest

from devstack import FakeGateway, GatewayConfig
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
    send_bodies,
)
from worker.contract import Envelope
from worker.store import Store

FLEET = [sys.executable, "-m", "worker.cli"]
TOLERANCE = 0.05  # seconds: gateway arrival jitter after the pair guard's stamp


def send_intent(user: str, fan: str, context: str, **data: object) -> dict:
    return {
        "type": "message_generation",
        "userId": user,
        "recipientId": fan,
        "sendToOnlyFans": True,
        "data": {"context": context, **data},
    }


async def wait_for(predicate, within: float = 60.0) -> None:
    """Poll ``predicate`` (the state lives in other processes and threads)."""
    async with asyncio.timeout(within):
        while not await predicate():  # noqa: ASYNC110 - nothing here to wait on but time
            await asyncio.sleep(0.2)


async def sends_of(store: Store, pair_prefix: str) -> list[dict]:
    return await query(
        store,
        "SELECT * FROM onlyfans_sends WHERE pair_key LIKE %s ORDER BY id",
        (pair_prefix + "%",),
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_spacing_holds_across_worker_processes(make_settings: Factory, store: Store) -> None:
    with FakeGateway(token=API_KEY) as gateway:
        settings = await make_settings(
            send_gateway_url=gateway.endpoint, send_spacing=2, concurrency=16
        )
        creator = f"c-{uuid.uuid4().hex[:6]}"
        fans = [f"fan-{i}" for i in range(5)]
        await send_bodies(
            settings, [envelope(send_intent(creator, fans[i % 5], f"msg {i}")) for i in range(50)]
        )
        env = env_for(
            settings,
            FLEET_SEND_GATEWAY_URL=gateway.endpoint,
            FLEET_SEND_SPACING="2",
            FLEET_LOG_LEVEL="WARNING",
        )
        workers = [await LoggedProcess.start(["run"], env) for _ in range(3)]
        try:

            async def all_sent() -> bool:
                return len(gateway.deliveries) >= 50

            await wait_for(all_sent, within=150)
        finally:
            for worker in workers:
                if worker.returncode is None:
                    worker.send_signal(signal.SIGTERM)
            codes = [(await w.finish(within=30))[0] for w in workers]
        pairs = gateway.per_pair()
        gaps = {
            pair: min(b - a for a, b in itertools.pairwise(times)) for pair, times in pairs.items()
        }
        print(
            "\nmin spacing per pair (s):",
            {fan: round(gap, 3) for (_, fan), gap in sorted(gaps.items())},
            "deliveries beyond 10 a pair:",
            gateway.duplicates(allowed=10),
        )
        assert codes == [0, 0, 0]
        assert len(pairs) == 5 and all(len(t) == 10 for t in pairs.values())
        assert min(gaps.values()) >= 2 - TOLERANCE
        assert gateway.duplicates(allowed=10) == 0
        rows = await sends_of(store, creator)
        assert {r["status"] for r in rows} == {"sent"} and len(rows) == 50


@pytest.mark.slow
async def test_sigkill_between_gateway_and_bookkeeping_delivers_once(
    make_settings: Factory, store: Store
) -> None:
    with FakeGateway(token=API_KEY, config=GatewayConfig(latency_ms=4000)) as gateway:
        settings = await make_settings(
            send_gateway_url=gateway.endpoint, visibility_timeout=3, heartbeat_interval=1
        )
        creator = f"c-{uuid.uuid4().hex[:6]}"
        await send_bodies(settings, [envelope(send_intent(creator, "fan-k", "once only"))])
        env = env_for(settings, FLEET_SEND_GATEWAY_URL=gateway.endpoint, FLEET_LOG_LEVEL="WARNING")
        doomed = await asyncio.create_subprocess_exec(
            *FLEET,
            "run",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

        async def delivered() -> bool:
            return len(gateway.deliveries) == 1

        await wait_for(delivered)
        doomed.send_signal(signal.SIGKILL)  # the gateway has it; the worker never hears back
        await doomed.wait()
        row = (await sends_of(store, creator))[0]
        assert row["status"] == "sending"
        gateway.config.latency_ms = 0

        async def settled() -> bool:
            rows = await sends_of(store, creator)
            return rows[0]["status"] == "sent"

        await run_until(settings, settled, within=60)
        assert len(gateway.deliveries) == 1 and gateway.duplicates() == 0
        assert gateway.replays >= 1


async def test_redelivery_and_replay_of_a_sent_message_do_not_resend(
    make_settings: Factory, store: Store, gateway: FakeGateway
) -> None:
    settings = await make_settings()
    creator = f"c-{uuid.uuid4().hex[:6]}"
    await send_bodies(settings, [envelope(send_intent(creator, "fan-r", "hello"))])
    await drain(settings)
    row = (await sends_of(store, creator))[0]
    assert row["status"] == "sent"
    before = len(gateway.deliveries)
    # the send step's own message, as a redelivery or a DLQ replay would bring it back
    send_wf = await query(
        store,
        "SELECT id FROM workflows WHERE type = 'onlyfans_send' AND parent_id = %s",
        (row["workflow_id"],),
    )
    body = {
        "version": 1,
        "workflowId": send_wf[0]["id"],
        "intent": {
            "type": "onlyfans_send",
            "userId": creator,
            "recipientId": "fan-r",
            "data": {"sendId": row["id"], "parentId": row["workflow_id"]},
        },
    }
    await send_bodies(
        settings, [Envelope.model_validate(body)]
    )  # signed, as the fleet's copies are
    stats = await drain(settings)
    assert stats.outcomes == {"duplicate": 1}
    # even if the workflow row were reset (a replay after an operator fix), the ledger says sent
    await query(
        store,
        "UPDATE workflows SET status = 'failed' WHERE id = %s RETURNING id",
        (send_wf[0]["id"],),
    )
    await send_bodies(
        settings, [Envelope.model_validate(body)]
    )  # signed, as the fleet's copies are
    stats = await drain(settings)
    assert stats.outcomes == {"completed": 1}
    assert len(gateway.deliveries) == before


async def test_replace_debounce_sends_only_the_newest(
    make_settings: Factory, store: Store, gateway: FakeGateway
) -> None:
    settings = await make_settings(send_spacing=6)
    creator = f"c-{uuid.uuid4().hex[:6]}"
    first = envelope(send_intent(creator, "fan-d", "first"))
    stale = envelope(send_intent(creator, "fan-d", "stale", debounce="replace"))
    newest = envelope(send_intent(creator, "fan-d", "newest", debounce="replace"))

    async def count(status: str, n: int) -> bool:
        rows = await sends_of(store, creator)
        return sum(r["status"] == status for r in rows) >= n

    stop = asyncio.Event()
    from worker.consumer import run_worker

    worker = asyncio.create_task(run_worker(settings, handle_signals=False, stop=stop))
    try:
        await send_bodies(settings, [first])
        await wait_for(lambda: count("sent", 1))
        await send_bodies(settings, [stale])
        await wait_for(lambda: count("scheduled", 1))
        await send_bodies(settings, [newest])
        await wait_for(lambda: count("sent", 2), within=30)
    finally:
        stop.set()
        await worker
    rows = await sends_of(store, creator)
    assert [r["status"] for r in rows] == ["sent", "superseded", "sent"]
    assert rows[1]["superseded_by"] == rows[2]["id"]
    texts = [d.text for d in gateway.deliveries if d.creator_id == creator]
    assert len(texts) == 2 and "stale" not in " ".join(texts)
    times = gateway.per_pair()[(creator, "fan-d")]
    assert times[1] - times[0] >= 6 - TOLERANCE


async def test_slot_beyond_900_seconds_is_redelayed_not_sent_early(
    make_settings: Factory, store: Store, gateway: FakeGateway
) -> None:
    settings = await make_settings(send_spacing=1000)
    creator = f"c-{uuid.uuid4().hex[:6]}"

    async def two_rows() -> bool:
        rows = await sends_of(store, creator)
        return len(rows) == 2 and rows[0]["status"] == "sent"

    await send_bodies(
        settings,
        [
            envelope(send_intent(creator, "fan-f", "now")),
            envelope(send_intent(creator, "fan-f", "much later")),
        ],
    )
    await run_until(settings, two_rows, within=60)
    rows = await sends_of(store, creator)
    assert rows[1]["status"] == "scheduled"
    assert (rows[1]["slot_at"] - rows[0]["slot_at"]).total_seconds() == pytest.approx(1000, abs=1)
    async with queue_for(settings) as queue:
        assert (await queue.total_depth()).delayed == 1  # DelaySeconds capped at 900

    # the same send arriving early (as after 900 s): re-delayed, not sent
    early = {
        "version": 1,
        "workflowId": str(uuid.uuid4()),
        "intent": {
            "type": "onlyfans_send",
            "userId": creator,
            "recipientId": "fan-f",
            "data": {"sendId": rows[1]["id"]},
        },
    }
    await send_bodies(settings, [Envelope.model_validate(early)])
    requests_before = len(gateway.requests)

    async def was_postponed() -> bool:
        found = await query(
            store, "SELECT status FROM workflows WHERE id = %s", (early["workflowId"],)
        )
        return bool(found) and found[0]["status"] == "waiting"

    stats = await run_until(settings, was_postponed, within=30)
    assert stats.outcomes.get("postponed") == 1
    # postponed means the gateway never heard of it: no request at all, not even a replay
    assert [r for r in gateway.requests[requests_before:] if r.creator_id == creator] == []
    assert sum(d.creator_id == creator for d in gateway.deliveries) == 1
    assert [r["status"] for r in await sends_of(store, creator)] == ["sent", "scheduled"]
    async with queue_for(settings) as queue:
        assert (await queue.total_depth()).delayed == 2
        for lane in list(queue.lanes):
            await queue.purge(lane=lane)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_two_thousand_recipient_campaign_accounts_for_every_send(
    make_settings: Factory, store: Store
) -> None:
    size = int(os.environ.get("FLEET_CAMPAIGN_SIZE", "2000"))
    with FakeGateway(token=API_KEY) as gateway:
        settings = await make_settings(
            send_gateway_url=gateway.endpoint,
            concurrency=96,
            pollers=6,
            campaign_chunk=50,
            campaign_concurrency=16,
            visibility_timeout=30,
            heartbeat_interval=5,
        )
        campaign = envelope(
            {
                "type": "campaign_execution",
                "userId": "c-big",
                "data": {"brief": "holiday sale", "recipients": [f"fan-{i}" for i in range(size)]},
            }
        )
        await send_bodies(settings, [campaign])
        started = asyncio.get_running_loop().time()
        stats = await drain(settings)
        elapsed = asyncio.get_running_loop().time() - started
        cid = str(campaign.workflow_id)
        result = fleet(["status", cid, "--json"], env_for(settings))
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        print(
            f"\ncampaign of {size}: {elapsed:.1f} s, {stats.received} messages received, "
            f"deliveries {len(gateway.deliveries)}, duplicates {gateway.duplicates()}, "
            f"status {report['sends']} chunks {report['chunks']}"
        )
        assert report["sends"] == {"sent": size}
        assert report["chunks"] == {"completed": size // 50}
        assert report["progress"]["scheduled"] == size
        assert report["campaignComplete"] is True
        assert len(gateway.deliveries) == size and gateway.duplicates() == 0
        assert report["llmCalls"] == size
