"""`fleet dlq`: list, show, replay and purge dead-lettered messages."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from worker.commands.common import console, errors, friendly, parse_duration, run_async
from worker.commands.common import settings_from_env as load
from worker.observability.logging import sanitize
from worker.ops.dlq import DlqEntry, DlqFilter, DlqWorkbench
from worker.queue import QueueClient
from worker.store import Store

__all__ = ["dlq"]


@asynccontextmanager
async def workbench() -> AsyncIterator[DlqWorkbench]:
    settings = load()
    async with (
        Store(settings.require_database_url()) as store,
        QueueClient.from_settings(settings) as queue,
    ):
        yield DlqWorkbench(queue, store)


def filters(func: Callable[..., None]) -> Callable[..., None]:
    options = [
        click.option("--intent", help="Intent type, e.g. message_generation."),
        click.option("--error", help="Error class (malformed, permanent, exhausted) or code."),
        click.option("--user", help="The creator's user id."),
        click.option("--older-than", help="Only messages older than this (90s, 15m, 2h, 7d)."),
        click.option("--newer-than", help="Only messages newer than this."),
        click.option("--text", help="Text to find in the reason."),
        click.option("--id", "ids", multiple=True, help="A DLQ or original message id (repeat)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def make_filter(kw: dict[str, Any]) -> DlqFilter:
    return DlqFilter(
        intent=kw.get("intent"),
        error=kw.get("error"),
        user=kw.get("user"),
        older_than=parse_duration(kw.get("older_than"), "--older-than"),
        newer_than=parse_duration(kw.get("newer_than"), "--newer-than"),
        text=kw.get("text"),
        ids=frozenset(kw.get("ids") or ()),
    )


@click.group()
def dlq() -> None:
    """Inspect and replay the dead-letter queue (reasons come from Postgres)."""


@dlq.command("list")
@filters
@click.option("--limit", type=int, default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@friendly
def list_(limit: int, as_json: bool, **kw: Any) -> None:
    """List dead-lettered messages with why they left, filtered."""
    chosen = make_filter(kw)

    async def go() -> list[dict[str, Any]]:
        async with workbench() as bench:
            entries = await bench.scan()
            await bench.release(entries)
        return [e.as_dict() for e in entries if chosen.matches(e)][:limit]

    rows = run_async(go())
    if as_json:
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title=f"{len(rows)} dead-lettered message(s)")
    for column in ("dlq message", "intent", "user", "class", "code", "age", "replays", "reason"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r["dlqMessageId"][:12],
            r["intentType"],
            r["userId"],
            r["errorClass"],
            r["errorCode"],
            f"{r['ageSeconds']:.0f}s",
            str(r["replayCount"]),
            r["reason"][:70],
        )
    console.print(table)


@dlq.command()
@click.argument("message_id")
@click.option("--json", "as_json", is_flag=True)
@friendly
def show(message_id: str, as_json: bool) -> None:
    """One message: body (sanitized), attributes, attempt history, last error."""

    async def go() -> dict[str, Any] | None:
        async with workbench() as bench:
            entries = await bench.scan()
            await bench.release(entries)
            entry = next(
                (e for e in entries if message_id in (e.message.message_id, e.source_id)), None
            )
            if entry is None:
                return None
            history = await bench.history(entry)
        return _details(entry, history)

    found = run_async(go())
    if found is None:
        errors.print(f"[red]no DLQ message {message_id}[/]")
        raise SystemExit(1)
    if as_json:
        print(json.dumps(found, indent=2, default=str))
        return
    for key, value in found.items():
        console.print(f"[bold]{key}[/]: {json.dumps(value, default=str, indent=2)}")


def _details(entry: DlqEntry, history: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        body: Any = sanitize(json.loads(entry.message.body))
    except ValueError:
        body = sanitize(entry.message.body)
    return {
        **entry.as_dict(),
        "body": body,
        "attributes": entry.message.attributes,
        "deadLetterHistory": entry.reason.get("history") if entry.reason else None,
        "attempts": [
            {k: (str(v) if k == "created_at" else v) for k, v in row.items()} for row in history
        ],
    }


@dlq.command()
@filters
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; change nothing.")
@click.option("--limit", type=int, help="Replay at most this many.")
@click.option("--rate", type=float, help="Messages per second (default: as fast as possible).")
@click.option(
    "--native",
    is_flag=True,
    help="Use SQS StartMessageMoveTask (all messages, no filters, no lineage per id).",
)
@click.option(
    "--hold",
    type=int,
    default=60,
    show_default=True,
    help="Seconds the read DLQ messages stay hidden from other readers.",
)
@friendly
def replay(
    dry_run: bool, limit: int | None, rate: float | None, native: bool, hold: int, **kw: Any
) -> None:
    """Send selected DLQ messages back to the work queue, then delete them from the DLQ.

    Killed at any point, nothing is lost: a message leaves the DLQ only after
    its copy was sent; at worst a copy exists twice and the workflow ledger
    makes the second a no-op.
    """
    chosen = make_filter(kw)
    if native:
        _native(rate, dry_run)
        return

    async def go() -> int:
        async with workbench() as bench:
            entries = await bench.scan(hold_seconds=hold)
            picked = [e for e in entries if chosen.matches(e)][: limit or None]
            await bench.release([e for e in entries if e not in picked])
            if dry_run:
                await bench.release(picked)
                for e in picked:
                    console.print(
                        f"would replay {e.message.message_id} ({e.intent_type}, "
                        f"{e.error_code}): {e.error_message[:80]}"
                    )
                console.print(f"{len(picked)} message(s) would be replayed (--dry-run)")
                return 0
            with Progress(
                TextColumn("replay"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=errors,
            ) as progress:
                task = progress.add_task("replay", total=len(picked))
                done = await bench.replay(
                    picked, rate=rate, on_done=lambda _r: progress.advance(task)
                )
            return len(done)

    count = run_async(go())
    if not dry_run:
        console.print(f"replayed {count} message(s) to the work queue")


def _native(rate: float | None, dry_run: bool) -> None:
    if dry_run:
        raise click.UsageError("--native moves everything; there is no dry run")

    async def go() -> dict[str, Any]:
        async with workbench() as bench:
            return await bench.native_replay(
                rate=int(rate) if rate else None,
                on_progress=lambda t: errors.print(
                    f"move task {t.get('Status')}: {t.get('ApproximateNumberOfMessagesMoved', 0)}"
                    f"/{t.get('ApproximateNumberOfMessagesToMove', '?')} moved"
                ),
            )

    task = run_async(go())
    console.print(
        f"native redrive {task.get('Status')}: "
        f"{task.get('ApproximateNumberOfMessagesMoved', 0)} message(s) moved"
    )
    if task.get("Status") != "COMPLETED":
        raise SystemExit(1)


@dlq.command()
@click.option("--older-than", help="Only messages older than this (90s, 15m, 2h, 7d).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@friendly
def purge(older_than: str | None, yes: bool) -> None:
    """Delete dead-lettered messages for good (asks first, says how many)."""
    chosen = DlqFilter(older_than=parse_duration(older_than, "--older-than"))

    async def go() -> int:
        async with workbench() as bench:
            entries = await bench.scan()
            picked = [e for e in entries if chosen.matches(e)]
            await bench.release([e for e in entries if e not in picked])
            if not picked:
                return 0
            scope = f" older than {older_than}" if older_than else ""
            if not yes and not click.confirm(
                f"Delete {len(picked)} DLQ message(s){scope}? This cannot be undone"
            ):
                await bench.release(picked)
                return -1
            return await bench.purge(picked)

    count = run_async(go())
    if count < 0:
        console.print("nothing deleted")
        return
    console.print(f"deleted {count} message(s) from the DLQ")
