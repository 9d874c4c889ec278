"""`fleet enqueue`: admit intents at the door (the worker's own check) and send them.

Input: flags (``--type``, ``--user``, ``--data JSON|@file``, ...), one intent or
envelope (``--intent JSON``; ``--json`` is its deprecated name), or JSONL
(``--file PATH``, ``--file -`` for standard input). Output: ``--output text``
(default) or ``--output json``, one JSON line per intent
(``{"workflowId", "messageId", "lane"}``; ``messageId`` is null under
``--dry-run``); refusals go to standard error as ``where:line:column: reason``
(text) or ``{"line", "column", "code", "error"}`` lines (json).
"""

from __future__ import annotations

import json
import sys
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
_PRIORITY = ("critical", "high")


def _json_arg(text: str, hint: str) -> Any:
    """JSON from an option; ``@path`` reads the file, ``@-`` standard input."""
    if text.startswith("@"):
        source = text[1:]
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot read {source}: {exc}", param_hint=hint) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", param_hint=hint
        ) from exc


def _intent_from_flags(flags: dict[str, Any], send: bool) -> dict[str, Any]:
    if not flags["intent_type"] or not flags["user"]:
        raise click.UsageError("give --type and --user, or --intent, or --file")
    fields: dict[str, Any] = {
        "type": flags["intent_type"],
        "userId": flags["user"],
        "data": _json_arg(flags["data"], "--data") if flags["data"] else {},
        "sendToOnlyFans": send,
    }
    for key, option in (
        ("recipientId", "recipient"),
        ("priority", "priority"),
        ("forceProvider", "force_provider"),
    ):
        if flags[option]:
            fields[key] = flags[option]
    return fields


def _refuse(where: str, line: int, column: int, error: EnqueueRefused, output: str) -> None:
    if output == "json":
        print(
            json.dumps({"line": line, "column": column, "code": error.code, "error": str(error)}),
            file=sys.stderr,
        )
    else:
        errors.print(f"[red]{where}:{line}:{column}:[/] {error}", highlight=False)


def _from_jsonl(source: str, providers: frozenset[str], output: str) -> list[Envelope]:
    from worker.ops.enqueue import read_jsonl

    if source == "-":
        text, where = sys.stdin.read(), "<stdin>"
    else:
        path = Path(source)
        if not path.is_file():
            raise click.BadParameter(f"no such file: {source}", param_hint="--file")
        text, where = path.read_text(encoding="utf-8"), source
    lines = list(read_jsonl(text.splitlines(), providers))
    bad = [line for line in lines if line.error]
    for line in bad[:20]:
        _refuse(
            where,
            line.number,
            line.column,
            EnqueueRefused(line.error or "", code=line.code),
            output,
        )
    if bad:
        raise EnqueueRefused(f"{len(bad)} of {len(lines)} line(s) refused; nothing sent")
    return [line.envelope for line in lines if line.envelope is not None]


@click.command()
@click.option("--type", "intent_type", help="Intent type, e.g. message_generation.")
@click.option("--user", help="The creator's user id.")
@click.option("--data", help="Intent data: a JSON object, or @file (@- for standard input).")
@click.option("--recipient", help="Fan id (recipientId).")
@click.option("--priority", type=click.Choice(["low", "medium", "high", "critical"]))
@click.option("--force-provider", type=click.Choice(["openai", "azure"]))
@click.option("--send", is_flag=True, help="Set sendToOnlyFans (needs --recipient).")
@click.option("--intent", "raw", help="A whole envelope or bare intent as JSON (or @file).")
@click.option("--json", "legacy_raw", hidden=True, help="Deprecated name of --intent.")
@click.option("--file", "source", help="JSONL, one envelope or bare intent per line; - for stdin.")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one line per intent (workflowId, messageId, lane), for scripts.",
)
@click.option("--dry-run", is_flag=True, help="Check only (the worker's own check); send nothing.")
@friendly
def enqueue(
    raw: str | None,
    legacy_raw: str | None,
    source: str | None,
    output: str,
    dry_run: bool,
    send: bool,
    **flags: Any,
) -> None:
    """Admit intents exactly as the worker will, then put them on the work queue.

    Every intent gets the worker's own check (data per type, sendToOnlyFans needs
    a recipient, a forced provider must be configured) before anything is sent;
    a refused one is reported with its line, column and field, and nothing is sent.
    """
    from worker.ops.enqueue import configured_providers, envelope_from_json

    settings = _settings()
    providers = configured_providers(settings)
    if legacy_raw is not None:
        errors.print("[yellow]--json is deprecated: use --intent[/]")
        raw = raw or legacy_raw
    if source is not None:
        envelopes = _from_jsonl(source, providers, output)
    elif raw is not None:
        envelopes = [envelope_from_json(_json_arg(raw, "--intent"), providers)]
    else:
        envelopes = [envelope_from_json(_intent_from_flags(flags, send), providers)]
    from worker.queue import encode_body

    for envelope in envelopes:  # size check before any send (a body over the queue's limit
        # is accepted when it can travel as an S3 pointer: FLEET_PAYLOAD_BUCKET)
        encode_body(envelope, settings.max_message_bytes, bucket=settings.payload_bucket)
    sent: list[tuple[str | None, str]] = [
        (
            None,
            "priority"
            if settings.priority_lanes and e.intent.priority in _PRIORITY
            else "standard",
        )
        for e in envelopes
    ]
    if not dry_run:
        sent = list(_run(_send(settings, envelopes, quiet=output == "json")))
    _report(envelopes, sent, output, dry_run)


def _report(
    envelopes: list[Envelope], sent: list[tuple[str | None, str]], output: str, dry: bool
) -> None:
    ids = [message_id for message_id, _ in sent]
    if output == "json":
        for envelope, (message_id, lane) in zip(envelopes, sent, strict=True):
            line = {"workflowId": str(envelope.workflow_id), "messageId": message_id, "lane": lane}
            print(json.dumps(line), flush=True)
    elif dry:
        console.print(f"{len(envelopes)} intent(s) valid; nothing sent (--dry-run)")
    elif len(ids) == 1:
        console.print(f"enqueued workflow {envelopes[0].workflow_id} as message {ids[0]}")
    else:
        console.print(f"enqueued {len(ids)} workflows")


async def _send(
    settings: Settings, envelopes: list[Envelope], quiet: bool
) -> list[tuple[str | None, str]]:
    from worker.ops import enqueue_envelopes
    from worker.queue import QueueClient

    async with QueueClient.from_settings(settings) as q:
        lanes = [q.lane_for(e.intent.priority) for e in envelopes]
        with Progress(
            TextColumn("enqueue"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=errors,
            disable=quiet or len(envelopes) < 50,
        ) as progress:
            task = progress.add_task("enqueue", total=len(envelopes))
            ids = await enqueue_envelopes(
                q,
                envelopes,
                on_sent=lambda n: progress.advance(task, n),
            )
    return list(zip(ids, lanes, strict=True))
