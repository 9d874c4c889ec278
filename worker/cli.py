"""The `fleet` command: parses, calls the parts, prints. Nothing imports it."""

from __future__ import annotations

import json
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from worker.commands import dlq, operations
from worker.commands.common import console, errors, friendly, run_async, settings_from_env
from worker.config import Settings
from worker.contract import Envelope, json_schema
from worker.errors import EnqueueRefused

SCHEMA_PATH = Path("docs/contract.schema.json")
PLUGINS = "fleet.commands"
DEV_COMMANDS = ("demo", "bench", "dev")


class FleetGroup(click.Group):
    """`fleet` plus the commands other installed packages add (entry point group
    ``fleet.commands``): the dev stack's `demo`, `bench` and `dev` exist only where the
    ``devstack`` package is installed, never in the production image."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *(e.name for e in _plugins())})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        for entry in _plugins():
            if entry.name == cmd_name:
                command: click.Command = entry.load()
                return command
        if cmd_name in DEV_COMMANDS:
            raise click.UsageError(
                f"`fleet {cmd_name}` is a dev-stack command and the devstack package is not "
                "installed here (it never ships in the production image): run `make install` "
                "in a checkout of the project"
            )
        return None


def _plugins() -> list[EntryPoint]:
    return list(entry_points(group=PLUGINS))
_settings = settings_from_env
_run = run_async


@click.group(cls=FleetGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Hybrid Orchestrator worker fleet.

    Long-polls SQS for workflow intents, runs each through its handler and an
    LLM provider, and records results and costs in PostgreSQL. Settings come
    from the environment (AWS_REGION, AWS_ENDPOINT_URL_SQS, DATABASE_URL,
    OPENAI_API_KEY, FLEET_*); see docs/configuration.md.
    """


@main.command()
@click.option("--until-idle", is_flag=True, help="Exit 0 once the queue is drained.")
@click.option("--concurrency", type=int, help="Handlers in flight (FLEET_CONCURRENCY).")
@click.option(
    "--processes",
    type=click.IntRange(1, 256),
    default=1,
    show_default=True,
    help="Worker processes under one supervisor (restarts crashed ones).",
)
@friendly
def run(until_idle: bool, concurrency: int | None, processes: int) -> None:
    """Run a worker until SIGTERM/SIGINT (graceful: drains in-flight work)."""
    from worker.consumer import run_worker

    settings = _settings(concurrency=concurrency)
    if processes > 1:
        from worker.ops.supervisor import Supervisor

        args = ["--concurrency", str(concurrency)] if concurrency else []
        supervisor = Supervisor(
            processes, health_port=settings.health_port, grace=settings.shutdown_grace, args=args
        )
        sys.exit(supervisor.run())
    stats = _run(run_worker(settings, until_idle=until_idle))
    errors.print(f"worker stopped: received {stats.received}, outcomes {stats.outcomes}")


@main.command()
@click.option("--url", help="Health URL (default http://127.0.0.1:$FLEET_HEALTH_PORT/healthz).")
@click.option("--ready", is_flag=True, help="Check readiness (/readyz) instead of liveness.")
@friendly
def check(url: str | None, ready: bool) -> None:
    """Exit 0 if the local worker is alive (or ready), 1 if not: for container health checks."""
    import urllib.error
    import urllib.request

    if url is None:
        port = _settings().health_port
        url = f"http://127.0.0.1:{port}/{'readyz' if ready else 'healthz'}"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a local probe
    try:
        with opener.open(url, timeout=5.0) as reply:
            status, kind, body = reply.status, reply.headers.get("content-type", ""), reply.read()
    except urllib.error.HTTPError as exc:  # an answer all the same (503 when not ready)
        status, kind, body = exc.code, exc.headers.get("content-type", ""), exc.read()
    except (urllib.error.URLError, OSError) as exc:
        errors.print(f"unhealthy: {url} did not answer ({type(exc).__name__})")
        sys.exit(1)
    text = body.decode("utf-8", "replace")
    detail = text[:200]
    if kind.startswith("application/json"):
        detail = json.loads(text).get("detail", "")
    if status != 200:
        errors.print(f"unhealthy: {detail}")
        sys.exit(1)
    console.print(f"healthy: {detail}")


@main.command()
@friendly
def migrate() -> None:
    """Apply pending SQL migrations to DATABASE_URL."""
    from worker.store import migrate as apply

    settings = _settings()
    applied = _run(apply(settings.require_database_url()))
    console.print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")


@main.group()
def queues() -> None:
    """Manage the work queue and its dead-letter queue."""


@queues.command("create")
@friendly
def queues_create() -> None:
    """Create (or update) the work queue and its DLQ with a RedrivePolicy. Idempotent."""
    from worker.queue import QueueSpec, create_queues

    s = _settings()
    spec = QueueSpec.from_settings(s)
    urls = _run(create_queues(spec, endpoint=s.sqs_endpoint_url, region=s.aws_region))
    for name, value in urls.items():
        console.print(f"{name}: {value}")


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


@main.command()
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


@main.command()
@click.argument("workflow_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@friendly
def status(workflow_id: str | None, as_json: bool) -> None:
    """Queue depths (visible, in flight, delayed, DLQ), workflows by status, cost today.

    With WORKFLOW_ID: that workflow, its cost, and for a campaign its chunks and
    its sends by status (complete when every send is sent, failed or superseded).
    """
    from worker.ops import collect_status
    from worker.queue import QueueClient
    from worker.store import Store

    settings = _settings()
    if workflow_id:
        _workflow_status(settings, workflow_id, as_json)
        return

    async def collect() -> dict[str, Any]:
        async with (
            Store(settings.require_database_url()) as store,
            QueueClient.from_settings(settings) as queue,
        ):
            return (await collect_status(queue, store)).as_dict()

    report = _run(collect())
    if as_json:
        console.print_json(json.dumps(report))
        return
    table = Table(title=f"queue {settings.queue_name}")
    for column in ("queue", "visible", "in flight", "delayed"):
        table.add_column(column)
    for name in ("queue", "dlq"):
        d = report[name]
        table.add_row(name, str(d["visible"]), str(d["inFlight"]), str(d["delayed"]))
    console.print(table)
    console.print(
        "workflows: "
        + (", ".join(f"{k} {v}" for k, v in sorted(report["workflows"].items())) or "none")
    )
    console.print(f"cost today: ${report['costTodayUsd']:.6f}")


def _workflow_status(settings: Settings, workflow_id: str, as_json: bool) -> None:
    from worker.ops import workflow_report
    from worker.store import Store

    async def collect() -> dict[str, Any] | None:
        async with Store(settings.require_database_url()) as store:
            return await workflow_report(store, workflow_id)

    report = _run(collect())
    if report is None:
        errors.print(f"[red]no workflow {workflow_id}[/]")
        sys.exit(1)
    if as_json:
        console.print_json(json.dumps(report))
        return
    table = Table(title=f"workflow {workflow_id}", show_header=False)
    for key in (
        "type",
        "userId",
        "status",
        "attempts",
        "provider",
        "errorCode",
        "errorMessage",
        "llmCalls",
        "costUsd",
        "updatedAt",
    ):
        if report.get(key) not in (None, ""):
            table.add_row(key, str(report[key]))
    for key in ("progress", "chunks", "sends"):
        if report.get(key):
            table.add_row(key, ", ".join(f"{k} {v}" for k, v in sorted(report[key].items())))
    if "campaignComplete" in report:
        table.add_row("campaign complete", "yes" if report["campaignComplete"] else "no")
    console.print(table)


@main.command()
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=SCHEMA_PATH, show_default=True
)
@click.option("--check", is_flag=True, help="Exit 1 if the file is not current.")
def schema(out: Path, check: bool) -> None:
    """Write the v1 message contract as JSON Schema (for producers in any language)."""
    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if check:
        current = out.read_text() if out.exists() else ""
        if current != text:
            errors.print(f"{out} is out of date: run `make schema`")
            sys.exit(1)
        console.print(f"{out} is current")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    console.print(f"wrote {out}")


main.add_command(dlq.dlq)
main.add_command(operations.costs)
main.add_command(operations.top)

if __name__ == "__main__":
    main()
