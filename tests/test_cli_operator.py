"""Issue 17 through the CLI, as an operator and a script would use it: DLQ commands fast
and exact, one JSON convention, one-line errors, a status that answers questions."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from tests.support import FLEET, Factory, dead_letter, dlq_json, env_for, fleet, queue_for
from worker.config import Settings
from worker.ops.dlq import DlqWorkbench
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
