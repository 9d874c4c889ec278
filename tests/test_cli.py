"""The `fleet` command run as a subprocess, as an operator would."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.support import (
    API_KEY,
    FLEET,
    SHUTDOWN_MARGIN,
    Factory,
    LoggedProcess,
    drain,
    env_for,
    envelope,
    fleet,
    query,
    queue_for,
    send_bodies,
)
from worker.store import Store


async def test_enqueue_validates_before_sending(make_settings: Factory, tmp_path: Path) -> None:
    settings = await make_settings()
    env = env_for(settings)
    jsonl = tmp_path / "intents.jsonl"
    jsonl.write_text(
        json.dumps({"type": "message_generation", "userId": "u", "data": {"context": "x"}})
        + "\n"
        + json.dumps({"type": "message_generation", "user": "u"})
        + "\n{broken\n"
    )
    result = fleet(["enqueue", "--file", str(jsonl)], env)
    assert result.returncode == 1
    assert "intents.jsonl:2:" in result.stderr and "userId" in result.stderr
    assert "intents.jsonl:3:" in result.stderr and "not JSON" in result.stderr
    async with queue_for(settings) as queue:
        assert (await queue.depth()).total == 0

    result = fleet(
        [
            "enqueue",
            "--type",
            "message_generation",
            "--user",
            "u",
            "--data",
            '{"context": "hello"}',
            "--priority",
            "high",
        ],
        env,
    )
    assert result.returncode == 0, result.stderr
    assert "enqueued workflow" in result.stdout
    status = fleet(["status", "--json"], env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["queue"]["visible"] == 1

    lines = [
        json.dumps({"type": "content_validation", "userId": f"u{i}", "data": {"content": "c"}})
        for i in range(25)
    ]
    jsonl.write_text("\n".join(lines) + "\n")
    result = fleet(["enqueue", "--file", str(jsonl)], env)
    assert result.returncode == 0, result.stderr
    assert "enqueued 25 workflows" in result.stdout


async def test_bad_configuration_fails_at_start_naming_the_setting(make_settings: Factory) -> None:
    settings = await make_settings()
    env = env_for(settings, FLEET_HEARTBEAT_INTERVAL="30", FLEET_VISIBILITY_TIMEOUT="10")
    result = fleet(["run"], env)
    assert result.returncode == 2
    assert "FLEET_HEARTBEAT_INTERVAL" in result.stderr


async def _wait_for_completed(store: Store, ids: list[str], at_least: int) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = await query(
            store,
            "SELECT count(*) AS n FROM workflows WHERE id = ANY(%s) AND status = 'completed'",
            (ids,),
        )
        if int(rows[0]["n"]) >= at_least:
            return int(rows[0]["n"])
        await asyncio.sleep(0.2)
    raise AssertionError("workers made no progress")


@pytest.mark.slow
async def test_sigterm_under_load_loses_nothing(make_settings: Factory, store: Store) -> None:
    settings = await make_settings(concurrency=8, shutdown_grace=0.5)
    envs = [
        envelope(
            {
                "type": "message_generation",
                "userId": f"u{i % 4}",
                "data": {"context": f"[[fake:slow:{400 + (i % 5) * 700}]] n{i}"},
            }
        )
        for i in range(40)
    ]
    ids = [str(e.workflow_id) for e in envs]
    await send_bodies(settings, list(envs))
    worker = await LoggedProcess.start(["run"], env_for(settings))
    try:
        await _wait_for_completed(store, ids, 5)
    finally:
        started = time.monotonic()
        code, err = await worker.finish(signal.SIGTERM, within=30)
        took = time.monotonic() - started
    assert code == 0, err[-2000:]
    assert took < settings.shutdown_grace + SHUTDOWN_MARGIN, f"exit took {took:.1f}s"
    assert "fleet_stopping" in err and "worker stopped" in err
    assert "grace_period_over" in err and "workflow_released" in err
    assert API_KEY not in err

    await drain(settings)
    rows = await query(
        store,
        "SELECT status, count(*) AS n FROM workflows WHERE id = ANY(%s) GROUP BY status",
        (ids,),
    )
    assert {r["status"]: int(r["n"]) for r in rows} == {"completed": 40}
    ok_calls = await query(
        store,
        "SELECT workflow_id, count(*) AS n FROM llm_calls WHERE workflow_id = ANY(%s)"
        " AND outcome = 'ok' GROUP BY workflow_id",
        (ids,),
    )
    assert len(ok_calls) == 40 and all(int(r["n"]) == 1 for r in ok_calls)
    async with queue_for(settings) as queue:
        assert (await queue.depth()).total == 0
        assert (await queue.depth(dlq=True)).total == 0


@pytest.mark.slow
def test_demo_json_summary(sqs_endpoint: str, pg_server: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "AWS_"))}
    env.update({"AWS_ENDPOINT_URL_SQS": sqs_endpoint, "TEST_DATABASE_URL": pg_server})
    result = subprocess.run(
        [*FLEET, "demo", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["enqueued"] == 10
    assert summary["completed"] == 7
    assert summary["sends"] == {"sent": 7}
    assert summary["deadLettered"] == 3
    assert summary["retried"] == 1
    assert summary["inProgress"] == 0
    assert Decimal(summary["costUsd"]) > 0 and "e" not in summary["costUsd"].lower()
    assert summary["dlqDepth"] == 3
    classes = sorted(d["errorClass"] for d in summary["deadLetters"])
    assert classes == ["malformed", "malformed", "permanent"]
    assert all("_" not in key for key in summary)  # camelCase, as the contract
    assert set(summary["costByIntent"]) == {
        "content_planning",
        "message_generation",
        "content_validation",
        "campaign_execution",
    }
