"""Issue 17 through the CLI, as an operator and a script would use it: DLQ commands fast
and exact, one JSON convention, one-line errors, a status that answers questions."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from decimal import Decimal
from typing import Any

import pytest
from rich.console import Console

from devstack.localstack import free_port
from tests.support import (
    FLEET,
    Factory,
    dead_letter,
    dlq_json,
    drain,
    env_for,
    envelope,
    fleet,
    queue_for,
    send_bodies,
)
from worker.config import Settings
from worker.errors import StoreUnavailable
from worker.ops.dlq import DlqWorkbench
from worker.ops.live import Snapshot, render
from worker.store import Store


async def test_dlq_reads_a_small_dlq_in_well_under_a_second(make_settings: Factory) -> None:
    settings = await make_settings()
    await dead_letter(settings, forced=0, malformed=10)
    async with Store(settings.require_database_url()) as store, queue_for(settings) as queue:
        bench = DlqWorkbench(queue, store)
        started = time.monotonic()
        entries = await bench.scan(hold_seconds=30)
        await bench.release(entries)
        took = time.monotonic() - started
        assert len(entries) == 10
        assert (await queue.depth(dlq=True)).visible == 10  # released at once
    assert took < 1.0, f"reading 10 DLQ messages took {took:.2f} s"


async def test_dlq_ids_are_whole_and_show_takes_a_prefix(make_settings: Factory) -> None:
    settings = await make_settings()
    await dead_letter(settings, forced=2, malformed=1)
    env = env_for(settings)
    rows = json.loads(fleet(["dlq", "list", "-o", "json"], env).stdout)
    legacy = dlq_json(settings)  # the old --json still works
    assert {r["dlqMessageId"] for r in rows} == {r["dlqMessageId"] for r in legacy}
    table = fleet(["dlq", "list"], env)
    assert table.returncode == 0, table.stderr
    for row in rows:
        assert row["dlqMessageId"] in table.stdout  # never cut: the user copies it
    whole = rows[0]["dlqMessageId"]
    shown = fleet(["dlq", "show", whole[:8], "--output", "json"], env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["dlqMessageId"] == whole
    missing = fleet(["dlq", "show", "no-such-id"], env)
    assert missing.returncode == 1 and "no DLQ message no-such-id" in missing.stderr


async def test_dlq_show_marks_redacted_fields(make_settings: Factory) -> None:
    settings = await make_settings()
    await dead_letter(settings, forced=1, malformed=0)
    env = env_for(settings)
    (row,) = dlq_json(settings)
    shown = fleet(["dlq", "show", row["dlqMessageId"]], env)
    assert shown.returncode == 0, shown.stderr
    assert '"contentType": "[redacted]"' in shown.stdout
    assert '""' not in shown.stdout


def _visible_dlq(settings: Settings) -> int:
    return len(dlq_json(settings))


def _interrupt_at_prompt(env: dict[str, str], prompt: str) -> str:
    """`fleet dlq purge` Ctrl-C'd once its question is on the screen; its stdout."""
    proc = subprocess.Popen(
        [*FLEET, "dlq", "purge"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = ""
    while prompt not in seen:
        chunk = proc.stderr.read(1)
        assert chunk, f"no prompt: {seen}"
        seen += chunk
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    return out


async def test_aborted_purge_leaves_the_dlq_visible(make_settings: Factory) -> None:
    settings = await make_settings()
    await dead_letter(settings, forced=0, malformed=3)
    env = env_for(settings)
    eof = fleet(["dlq", "purge"], env, input="")
    assert eof.returncode == 1 and "Delete 3 DLQ message(s)?" in eof.stderr
    assert _visible_dlq(settings) == 3  # at once, not after a two-minute hold

    out = _interrupt_at_prompt(env, "Delete 3")
    assert "deleted" not in out
    assert _visible_dlq(settings) == 3
    purged = fleet(["dlq", "purge", "--yes", "-o", "json"], env)
    assert purged.returncode == 0, purged.stderr
    report = json.loads(purged.stdout)
    assert report["deleted"] == 3 and len(report["dlqMessageIds"]) == 3
    assert _visible_dlq(settings) == 0


async def test_replaying_malformed_messages_needs_force(make_settings: Factory) -> None:
    settings = await make_settings()
    await dead_letter(settings, forced=0, malformed=2)
    env = env_for(settings)
    refused = fleet(["dlq", "replay"], env)
    assert refused.returncode == 1
    assert "2 of the selected message(s) are malformed" in refused.stderr
    assert "--force" in refused.stderr
    assert _visible_dlq(settings) == 2
    dry = fleet(["dlq", "replay", "--dry-run"], env)
    assert dry.returncode == 0 and "2 message(s) would be replayed" in dry.stdout
    assert "will fail again" in dry.stderr
    forced = fleet(["dlq", "replay", "--force", "-o", "json"], env)
    assert forced.returncode == 0, forced.stderr
    report = json.loads(forced.stdout)
    assert report["count"] == 2 and report["malformed"] == 2
    assert all(m["newMessageId"] for m in report["messages"])
    assert _visible_dlq(settings) == 0
    async with queue_for(settings) as queue:
        assert (await queue.depth()).visible == 2
        await queue.purge()


def _json(args: list[str], env: dict[str, str]) -> Any:
    result = fleet(args, env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # the whole of stdout is one JSON document


def _no_exponent(value: str) -> bool:
    return "e" not in value.lower() and Decimal(value) == Decimal(value).quantize(Decimal("1e-8"))


async def test_every_data_command_speaks_json(make_settings: Factory) -> None:
    settings = await make_settings()
    await send_bodies(
        settings,
        [envelope({"type": "message_generation", "userId": "js", "data": {"context": "hi"}})],
    )
    await drain(settings)
    env = env_for(settings)
    status = _json(["status", "-o", "json"], env)
    assert set(status["lanes"]) >= {"standard"} and "inFlight" in status["queue"]
    assert _no_exponent(status["costTodayUsd"])
    assert all("_" not in key for row in status["costToday"] for key in row)
    assert _json(["status", "--json"], env)["queue"] == status["queue"]  # the old flag
    costs = _json(["costs", "--since", "1h", "--user", "js", "--output", "json"], env)
    assert costs["calls"] == 1 and _no_exponent(costs["totalUsd"])
    assert all(_no_exponent(row["usd"]) for row in costs["groups"]["user"])
    shot = _json(["top", "--once", "-o", "json"], env)
    assert "perSecond" in shot and _no_exponent(shot["costPerMinuteUsd"])
    assert _json(["migrate", "-o", "json"], env) == {"applied": []}
    made = _json(["queues", "create", "-o", "json"], env)
    assert made["queueUrl"].endswith(settings.queue_name)
    down = fleet(["check", "-o", "json", "--url", f"http://127.0.0.1:{free_port()}/healthz"], env)
    assert down.returncode == 1 and json.loads(down.stdout)["healthy"] is False
    for command in (["status"], ["costs"], ["top"], ["migrate"], ["check"], ["dlq", "list"]):
        helped = fleet([*command, "--help"], env)
        assert "--output" in helped.stdout and "-o" in helped.stdout, command
        assert "--json" not in helped.stdout, command  # the alias stays hidden


async def test_empty_answers_say_so(make_settings: Factory) -> None:
    settings = await make_settings()
    env = env_for(settings)
    nobody = fleet(["costs", "--user", "nobody-at-all"], env)
    assert nobody.returncode == 0 and "nothing to show" in nobody.stdout
    assert nobody.stdout.strip().count("\n") == 0  # one sentence, no empty tables
    empty = fleet(["dlq", "list"], env)
    assert empty.returncode == 0 and "the DLQ is empty" in empty.stdout
    text = Console(width=140, record=True)
    text.print(render(Snapshot(), "t"))  # nothing completed in the last minute
    assert "no samples" in text.export_text() and "0.00s" not in text.export_text()


async def test_unreachable_database_is_one_line_in_seconds(make_settings: Factory) -> None:
    settings = await make_settings()
    env = env_for(settings, DATABASE_URL=f"postgresql://fleet@127.0.0.1:{free_port()}/fleet")
    started = time.monotonic()
    fleet(["--version"], env)
    start_up = time.monotonic() - started  # the interpreter's share, paid by every command
    started = time.monotonic()
    result = fleet(["status"], env)
    took = time.monotonic() - started - start_up
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot reach the database" in lines[0] and "Connection refused" in lines[0]
    assert took < 3.0, f"{took:.1f} s beyond start-up"
    with pytest.raises(StoreUnavailable):
        async with asyncio.timeout(3):
            await Store(env["DATABASE_URL"]).open()


async def test_status_of_a_workflow_answers_questions(make_settings: Factory) -> None:
    settings = await make_settings(max_receives=2)
    failing = envelope(
        {
            "type": "message_generation",
            "userId": "st",
            "data": {"context": "[[fake:transient:st-503:99]] hello"},
        }
    )
    fine = envelope({"type": "message_generation", "userId": "st", "data": {"context": "hi"}})
    await send_bodies(settings, [failing, fine])
    await drain(settings)
    env = env_for(settings)
    failed = _json(["status", str(failing.workflow_id), "-o", "json"], env)
    errors = [call["errorCode"] for call in failed["calls"]]
    assert errors and set(errors) <= {"server", "circuit_open"} and "server" in errors
    assert failed["createdAt"] and failed["updatedAt"] and _no_exponent(failed["costUsd"])
    assert "nextRetryAt" in failed
    text = fleet(["status", str(failing.workflow_id)], env)
    assert text.returncode == 0 and "server" in text.stdout and "LLM attempts" in text.stdout
    done = _json(["status", str(fine.workflow_id), "--output", "json"], env)
    assert done["status"] == "completed" and done["result"]
    assert done["llmCalls"] == 1 and Decimal(done["costUsd"]) > 0
    shown = fleet(["status", str(fine.workflow_id)], env)
    assert "result" in shown.stdout and "created" in shown.stdout
