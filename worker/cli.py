"""The `fleet` command: parses, calls the parts, prints. Nothing imports it."""

from __future__ import annotations

import gc
import json
import sys
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import click

from worker import __version__
from worker.commands import budgets, dlq, enqueue, operations, status
from worker.commands import console as web_console
from worker.commands.common import (
    camel,
    console,
    emit_json,
    errors,
    friendly,
    output_option,
    run_async,
    settings_from_env,
)
from worker.contract import json_schema

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
@click.version_option(__version__, "--version", "-V", prog_name="fleet")
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
    help="Worker processes under one supervisor (restarts crashed ones). Child i serves "
    "its health endpoint on FLEET_HEALTH_PORT + i: the N ports must be free.",
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
            processes,
            health_port=settings.health_port,
            health_host=settings.health_host,
            grace=settings.shutdown_grace,
            args=args,
            until_idle=until_idle,
        )
        sys.exit(supervisor.run())
    _settle_heap()
    stats = _run(run_worker(settings, until_idle=until_idle))
    errors.print(stats.sentence())


def _settle_heap() -> None:
    """Move what start-up built (modules, settings, clients' models) out of the
    collector's sight, and collect young objects less often: a worker makes many
    short-lived ones per message, and full passes over the start-up heap were ~8 %
    of its CPU at speed."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


@main.command()
@click.option("--url", help="Health URL (default http://127.0.0.1:$FLEET_HEALTH_PORT/healthz).")
@click.option("--ready", is_flag=True, help="Check readiness (/readyz) instead of liveness.")
@output_option()
@friendly
def check(url: str | None, ready: bool, as_json: bool) -> None:
    """Exit 0 if the local worker is alive (or ready), 1 if not: for container health checks."""
    if url is None:
        port = _settings().health_port
        url = f"http://127.0.0.1:{port}/{'readyz' if ready else 'healthz'}"
    status, detail = _probe(url)
    healthy = status == 200
    if as_json:
        emit_json({"healthy": healthy, "url": url, "httpStatus": status, "detail": detail})
    elif healthy:
        console.print(f"healthy: {detail}")
    else:
        errors.print(f"unhealthy: {detail}")
    if not healthy:
        sys.exit(1)


def _probe(url: str) -> tuple[int | None, str]:
    """(HTTP status, detail) of a health URL; (None, why) when nothing answered."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a local probe
    try:
        with opener.open(url, timeout=5.0) as reply:
            status, kind, body = reply.status, reply.headers.get("content-type", ""), reply.read()
    except urllib.error.HTTPError as exc:  # an answer all the same (503 when not ready)
        status, kind, body = exc.code, exc.headers.get("content-type", ""), exc.read()
    except (urllib.error.URLError, OSError) as exc:
        return None, f"{url} did not answer ({type(exc).__name__})"
    text = body.decode("utf-8", "replace")
    detail = text[:200]
    if kind.startswith("application/json"):
        detail = str(json.loads(text).get("detail", ""))
    return status, detail


@main.command()
@output_option()
@friendly
def migrate(as_json: bool) -> None:
    """Apply pending SQL migrations to DATABASE_URL."""
    from worker.store import migrate as apply

    settings = _settings()
    applied = _run(apply(settings.require_database_url()))
    if as_json:
        emit_json({"applied": applied})
        return
    console.print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")


@main.group()
def queues() -> None:
    """Manage the work queue and its dead-letter queue."""


@queues.command("create")
@output_option()
@friendly
def queues_create(as_json: bool) -> None:
    """Create (or update) the work queue and its DLQ with a RedrivePolicy. Idempotent.

    With FLEET_PAYLOAD_BUCKET set, the payload bucket is created too when S3 is a local
    endpoint (AWS_ENDPOINT_URL_S3); in AWS it comes from the CloudFormation template."""
    from worker.queue import Payloads, QueueSpec, create_queues

    s = _settings()
    spec = QueueSpec.from_settings(s)
    urls = _run(create_queues(spec, endpoint=s.sqs_endpoint_url, region=s.aws_region))
    if s.payload_bucket:
        bucket_name = s.payload_bucket

        async def bucket() -> str:
            async with Payloads(
                bucket_name, endpoint=s.s3_endpoint_url, region=s.aws_region
            ) as payloads:
                return await payloads.ensure_bucket(create=s.s3_endpoint_url is not None)

        urls["payload_bucket"] = f"{bucket_name} ({_run(bucket())})"
    if as_json:
        emit_json({camel(name): value for name, value in urls.items()})
        return
    for name, value in urls.items():
        console.print(f"{name}: {value}")


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


main.add_command(budgets.budgets)
main.add_command(dlq.dlq)
main.add_command(enqueue.enqueue)
main.add_command(status.status)
main.add_command(operations.costs)
main.add_command(operations.top)
main.add_command(web_console.console)

if __name__ == "__main__":
    main()
