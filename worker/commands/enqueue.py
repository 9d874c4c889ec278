"""`fleet enqueue`: validate intents at the door and put them on the work queue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from worker.commands.common import console, errors, friendly, run_async, settings_from_env
from worker.config import Settings
from worker.contract import Envelope
from worker.errors import EnqueueRefused

__all__ = ["enqueue"]

_settings = settings_from_env
_run = run_async


def _intent_from_flags(
    intent_type: str | None,
    user: str | None,
    data: str | None,
    recipient: str | None,
    priority: str | None,
    force_provider: str | None,
    send: bool,
) -> Envelope:
    if not intent_type or not user:
        raise click.UsageError("give --type and --user, or --json, or --file")
    try:
        decoded = json.loads(data) if data else {}
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc.msg}", param_hint="--data") from exc
    fields: dict[str, Any] = {
        "type": intent_type,
        "userId": user,
        "data": decoded,
        "sendToOnlyFans": send,
    }
    for key, value in (
        ("recipientId", recipient),
        ("priority", priority),
        ("forceProvider", force_provider),
    ):
        if value:
            fields[key] = value
    from worker.ops import envelope_from_json

    return envelope_from_json(fields)


@click.command()
@click.option("--type", "intent_type", help="Intent type, e.g. message_generation.")
@click.option("--user", help="The creator's user id.")
@click.option("--data", help="Intent data as a JSON object.")
@click.option("--recipient", help="Fan id (recipientId).")
@click.option("--priority", type=click.Choice(["low", "medium", "high", "critical"]))
@click.option("--force-provider", type=click.Choice(["openai", "azure"]))
@click.option("--send", is_flag=True, help="Set sendToOnlyFans.")
@click.option("--json", "raw", help="A whole envelope or bare intent as JSON.")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A JSONL file: one envelope or bare intent per line.",
)
@click.option("--dry-run", is_flag=True, help="Validate only; send nothing.")
@friendly
def enqueue(
    intent_type: str | None,
    user: str | None,
    data: str | None,
    recipient: str | None,
    priority: str | None,
    force_provider: str | None,
    send: bool,
    raw: str | None,
    path: Path | None,
    dry_run: bool,
) -> None:
    """Validate intents and put them on the work queue.

    Every intent is checked against the v1 contract before anything is sent;
    a bad one is reported with its line and field, and nothing is sent.
    """
    from worker.ops import envelope_from_json, read_jsonl

    if path is not None:
        lines = list(read_jsonl(path))
        bad = [line for line in lines if line.error]
        for line in bad[:20]:
            errors.print(f"[red]{path}:{line.number}:[/] {line.error}")
        if bad:
            raise EnqueueRefused(f"{len(bad)} of {len(lines)} line(s) invalid; nothing sent")
        envelopes = [line.envelope for line in lines if line.envelope is not None]
    elif raw is not None:
        try:
            envelopes = [envelope_from_json(json.loads(raw))]
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc.msg}", param_hint="--json") from exc
    else:
        envelopes = [
            _intent_from_flags(intent_type, user, data, recipient, priority, force_provider, send)
        ]
    settings = _settings()
    from worker.contract import encode_envelope

    for envelope in envelopes:
        encode_envelope(envelope, settings.max_message_bytes)  # size check before any send
    if dry_run:
        console.print(f"{len(envelopes)} intent(s) valid; nothing sent (--dry-run)")
        return
    ids = _run(_send(settings, envelopes))
    if len(ids) == 1:
        console.print(f"enqueued workflow {envelopes[0].workflow_id} as message {ids[0]}")
    else:
        console.print(f"enqueued {len(ids)} workflows")


async def _send(settings: Settings, envelopes: list[Envelope]) -> list[str]:
    from worker.ops import enqueue_envelopes
    from worker.queue import QueueClient

    async with QueueClient.from_settings(settings) as q:
        with Progress(
            TextColumn("enqueue"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=errors,
            disable=len(envelopes) < 50,
        ) as progress:
            task = progress.add_task("enqueue", total=len(envelopes))
            return await enqueue_envelopes(
                q,
                envelopes,
                max_bytes=settings.max_message_bytes,
                on_sent=lambda n: progress.advance(task, n),
            )
