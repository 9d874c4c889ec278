"""`fleet dlq`: list, show, replay and purge dead-lettered messages."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import click
from rich.table import Table

from worker.commands.common import (
    console,
    emit_json,
    errors,
    friendly,
    output_option,
    parse_duration,
    run_async,
)
from worker.commands.common import settings_from_env as load
from worker.commands.replay_plan import ReplayPlan
from worker.ops.dlq import DlqEntry, DlqFilter, DlqWorkbench, rest_of
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


LIST_HOLD = 30  # seconds a listing would hide messages if it died before releasing them


@click.group()
def dlq() -> None:
    """Inspect and replay the dead-letter queue (reasons come from Postgres)."""


@dlq.command("list")
@filters
@click.option("--limit", type=int, default=200, show_default=True)
@output_option(legacy_json=True)
@friendly
def list_(limit: int, as_json: bool, **kw: Any) -> None:
    """List dead-lettered messages with why they left, filtered.

    Ids are printed whole; `fleet dlq show` takes any of them, or a unique prefix.
    """
    chosen = make_filter(kw)

    async def go() -> list[dict[str, Any]]:
        async with workbench() as bench:
            entries = await bench.scan(hold_seconds=LIST_HOLD)
            await bench.release(entries)
        return [e.as_dict() for e in entries if chosen.matches(e)][:limit]

    rows = run_async(go())
    if as_json:
        emit_json(rows)
        return
    if not rows:
        console.print("no DLQ message matches" if any(kw.values()) else "the DLQ is empty")
        return
    table = Table(title=f"{len(rows)} dead-lettered message(s)")
    table.add_column("dlq message id", no_wrap=True, min_width=36)
    for column in ("intent", "user", "class", "code", "age", "replays"):
        table.add_column(column, no_wrap=True)
    table.add_column("reason", overflow="ellipsis", no_wrap=True, max_width=70)
    for r in rows:
        table.add_row(
            r["dlqMessageId"],
            r["intentType"],
            r["userId"],
            r["errorClass"],
            r["errorCode"],
            f"{r['ageSeconds']:.0f}s",
            str(r["replayCount"]),
            r["reason"],
        )
    console.print(table)


@dlq.command()
@click.argument("message_id")
@output_option(legacy_json=True)
@friendly
def show(message_id: str, as_json: bool) -> None:
    """One message: body (sanitized), attributes, attempt history, last error.

    MESSAGE_ID is the DLQ message id, the original message id or the workflow
    id, whole or any unique prefix of one.
    """

    async def go() -> dict[str, Any] | list[str]:
        async with workbench() as bench:
            entries = await bench.scan(hold_seconds=LIST_HOLD)
            await bench.release(entries)
            found = pick(entries, message_id)
            if len(found) != 1:
                return [e.message.message_id for e in found]
            return await bench.details(found[0])

    found = run_async(go())
    if isinstance(found, list):
        if found:
            errors.print(f"[red]{message_id} is the start of {len(found)} DLQ messages' ids:[/]")
            for candidate in found[:20]:
                errors.print(f"  {candidate}")
        else:
            errors.print(f"[red]no DLQ message {message_id}[/]")
        raise SystemExit(1)
    if as_json:
        emit_json(found)
        return
    for key, value in found.items():
        shown = value if isinstance(value, str) else json.dumps(value, default=str, indent=2)
        console.print(f"[bold]{key}[/]: ", end="")
        console.print(shown, highlight=False, markup=False)


def pick(entries: list[DlqEntry], wanted: str) -> list[DlqEntry]:
    """The entries known by ``wanted`` exactly, else those whose ids start with it."""
    exact = [e for e in entries if e.known_as(wanted, exact=True)]
    return exact or [e for e in entries if e.known_as(wanted)]


@dlq.command()
@filters
@click.option("--dry-run", is_flag=True, help="Show what would be replayed; change nothing.")
@click.option("--limit", type=int, help="Replay at most this many.")
@click.option("--rate", type=float, help="Messages per second (default: as fast as possible).")
@click.option("--force", is_flag=True, help="Replay malformed messages too (they will fail again).")
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
@output_option()
@friendly
def replay(
    dry_run: bool,
    limit: int | None,
    rate: float | None,
    force: bool,
    native: bool,
    hold: int,
    as_json: bool,
    **kw: Any,
) -> None:
    """Send selected DLQ messages back to the work queue, then delete them from the DLQ.

    Killed at any point, nothing is lost: a message leaves the DLQ only after
    its copy was sent; at worst a copy exists twice and the workflow ledger
    makes the second a no-op. Malformed messages fail again on replay: they
    are replayed only with --force.
    """
    if native:
        _native(rate, dry_run, as_json)
        return
    plan = ReplayPlan(make_filter(kw), limit, rate, hold, dry_run=dry_run, force=force)

    async def go() -> dict[str, Any]:
        async with workbench() as bench:
            return await plan.run(bench)

    report = run_async(go())
    malformed = report["malformed"]
    if as_json:
        emit_json(report)
    elif dry_run:
        click.echo(
            "".join(
                f"would replay {row['dlqMessageId']} ({row['intentType']}, {row['errorCode']}): "
                f"{row['reason'][:80]}\n"
                for row in report["messages"]
            ),
            nl=False,
        )
        console.print(f"{report['count']} message(s) would be replayed (--dry-run)")
    elif not report["refused"]:
        console.print(f"replayed {report['count']} message(s) to the work queue")
    if malformed and (dry_run or report["refused"]):
        errors.print(
            f"[yellow]warning:[/] {malformed} of the selected message(s) are malformed and "
            "will fail again when replayed; replaying them needs --force "
            "(or leave them out with a filter)"
        )
    if report["refused"]:
        raise SystemExit(1)


def _native(rate: float | None, dry_run: bool, as_json: bool) -> None:
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
    if as_json:
        emit_json({"status": task.get("Status"), **task})
    else:
        console.print(
            f"native redrive {task.get('Status')}: "
            f"{task.get('ApproximateNumberOfMessagesMoved', 0)} message(s) moved"
        )
    if task.get("Status") != "COMPLETED":
        raise SystemExit(1)


@dlq.command()
@click.option("--older-than", help="Only messages older than this (90s, 15m, 2h, 7d).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@output_option()
@friendly
def purge(older_than: str | None, yes: bool, as_json: bool) -> None:
    """Delete dead-lettered messages for good (asks first, says how many).

    Nothing is held while the question waits: the DLQ is read, released, and
    read again after a yes; only the messages counted in the question are
    deleted. Declined or interrupted (EOF, Ctrl-C), nothing changes.
    """
    chosen = DlqFilter(older_than=parse_duration(older_than, "--older-than"))

    async def count() -> list[str]:
        async with workbench() as bench:
            entries = await bench.scan(hold_seconds=LIST_HOLD)
            await bench.release(entries)
        return [e.message.message_id for e in entries if chosen.matches(e)]

    async def delete(ids: frozenset[str]) -> list[str]:
        async with workbench() as bench:
            entries = await bench.scan(hold_seconds=LIST_HOLD)
            picked = [e for e in entries if e.message.message_id in ids]
            await bench.release(rest_of(entries, picked))
            await bench.purge(picked)
        return [e.message.message_id for e in picked]

    ids = run_async(count())
    scope = f" older than {older_than}" if older_than else ""
    if ids and not yes:
        question = f"Delete {len(ids)} DLQ message(s){scope}? This cannot be undone"
        if not click.confirm(question, err=True):
            _purged([], as_json, declined=True)
            return
    _purged(run_async(delete(frozenset(ids))) if ids else [], as_json)


def _purged(ids: list[str], as_json: bool, *, declined: bool = False) -> None:
    if as_json:
        emit_json({"deleted": len(ids), "declined": declined, "dlqMessageIds": ids})
    elif declined:
        console.print("nothing deleted")
    else:
        console.print(f"deleted {len(ids)} message(s) from the DLQ")
