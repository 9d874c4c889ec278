"""`fleet dev up|down`: the local stack kept running to work on by hand.

`fleet dev up` starts LocalStack (unless AWS_ENDPOINT_URL_SQS names an SQS),
PostgreSQL (a scratch database on DATABASE_URL / TEST_DATABASE_URL, else an
embedded server), the fake OpenAI and Azure OpenAI and the fake send gateway;
creates the queues and the payload bucket (LocalStack's S3), migrates, prints
`export` lines (and writes them to a file to `source`), and stays up until Ctrl-C
or SIGTERM. `--detach` runs the same in the background; `fleet dev down` stops it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import click

from devstack.demo import DEMO_KEY, StackUrls, local_stack
from worker.commands.common import console, errors, friendly, run_async
from worker.config import load_settings
from worker.errors import PayloadUnavailable
from worker.queue import Payloads, QueueSpec, create_queues
from worker.store import migrate

__all__ = ["dev", "exports", "payload_bucket"]

STATE = Path(".fleet-local")
ENV_FILE = STATE / "env"
PID_FILE = STATE / "dev.pid"
LOG_FILE = STATE / "dev.log"


def exports(urls: StackUrls, queue_name: str) -> dict[str, str]:
    """The environment a `fleet` command needs to use this stack."""
    return {
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_ENDPOINT_URL": urls.sqs_endpoint,
        "AWS_ENDPOINT_URL_SQS": urls.sqs_endpoint,
        "DATABASE_URL": urls.database_url,
        "OPENAI_API_KEY": DEMO_KEY,
        "OPENAI_BASE_URL": urls.openai_base_url,
        "AZURE_OPENAI_ENDPOINT": urls.azure_endpoint,
        "AZURE_OPENAI_API_KEY": DEMO_KEY,
        "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
        "FLEET_QUEUE_NAME": queue_name,
        "AWS_ENDPOINT_URL_S3": os.environ.get("AWS_ENDPOINT_URL_S3") or urls.sqs_endpoint,
        "FLEET_PAYLOAD_BUCKET": payload_bucket(queue_name),
        "FLEET_SEND_GATEWAY_URL": urls.gateway_url,
        "FLEET_SEND_GATEWAY_TOKEN": DEMO_KEY,
    }


def payload_bucket(queue_name: str) -> str:
    """A valid S3 bucket name for this queue's bodies sent as pointers."""
    name = re.sub(r"[^a-z0-9-]+", "-", queue_name.lower()).strip("-")[:50] or "fleet"
    return f"{name}-payloads"


@click.group()
def dev() -> None:
    """A local stack to work on by hand: LocalStack, PostgreSQL, provider and gateway fakes."""


@dev.command()
@click.option("--detach", is_flag=True, help="Run in the background; stop with `fleet dev down`.")
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=ENV_FILE,
    show_default=True,
    help="Where the export lines are written (`source` it).",
)
@click.option("--queue", "queue_name", default="fleet-dev", show_default=True)
@friendly
def up(detach: bool, env_file: Path, queue_name: str) -> None:
    """Start the local stack, create the queues, migrate, print `export` lines, stay up.

    \b
    Then, in another shell:
      source .fleet-local/env
      fleet enqueue --type message_generation --user u-1 --data '{"context": "hi"}'
      fleet run --until-idle
    """
    if detach:
        _detach(env_file, queue_name)
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with errors.status("starting the local stack") as spin, local_stack() as urls:
        values = exports(urls, queue_name)
        spin.update("creating the queues and migrating")
        run_async(_prepare(values))
        spin.stop()
        lines = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in values.items())
        env_file.parent.mkdir(parents=True, exist_ok=True)
        partial = env_file.with_name(env_file.name + ".partial")
        partial.write_text(lines)
        partial.replace(env_file)  # whole or absent: `--detach` waits for it
        console.print(lines, end="", soft_wrap=True, highlight=False)
        errors.print(f"local stack up; the lines above are in {env_file} (`source {env_file}`)")
        errors.print("Ctrl-C (or `fleet dev down`) stops it and deletes its data")
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(0.5):
                pass
        errors.print("stopping the local stack")
        env_file.unlink(missing_ok=True)


@dev.command()
@friendly
def down() -> None:
    """Stop a stack started with `fleet dev up --detach`."""
    if not PID_FILE.exists():
        errors.print(f"no detached local stack here ({PID_FILE} not found)")
        sys.exit(1)
    pid = int(PID_FILE.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        for _ in range(300):
            os.kill(pid, 0)
            time.sleep(0.1)
        errors.print(f"the local stack (pid {pid}) did not stop within 30 s")
        sys.exit(1)
    PID_FILE.unlink(missing_ok=True)
    console.print(f"stopped the local stack (pid {pid})")


async def _prepare(values: dict[str, str]) -> None:
    settings = load_settings(
        sqs_endpoint_url=values["AWS_ENDPOINT_URL_SQS"],
        database_url=values["DATABASE_URL"],
        queue_name=values["FLEET_QUEUE_NAME"],
    )
    await create_queues(
        QueueSpec.from_settings(settings), endpoint=settings.sqs_endpoint_url, region="us-east-1"
    )
    try:
        async with Payloads(
            values["FLEET_PAYLOAD_BUCKET"],
            endpoint=values["AWS_ENDPOINT_URL_S3"],
            region="us-east-1",
        ) as payloads:
            await payloads.ensure_bucket(create=True)
    except PayloadUnavailable as exc:  # an SQS-only endpoint (ElasticMQ): no large bodies
        errors.print(f"[yellow]no payload bucket ({exc}); bodies over the limit are refused[/]")
        del values["FLEET_PAYLOAD_BUCKET"], values["AWS_ENDPOINT_URL_S3"]
    await migrate(values["DATABASE_URL"])


def _detach(env_file: Path, queue_name: str) -> None:
    """Start `fleet dev up` in its own session, wait for its env file, print it."""
    env_file.unlink(missing_ok=True)
    STATE.mkdir(parents=True, exist_ok=True)
    command = [sys.argv[0], "dev", "up", "--env-file", str(env_file), "--queue", queue_name]
    if not command[0].endswith("fleet"):
        command = [sys.executable, "-m", "worker.cli", *command[1:]]
    with LOG_FILE.open("wb") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
        )
    PID_FILE.write_text(str(proc.pid))
    with errors.status("starting the local stack in the background"):
        for _ in range(1800):
            if env_file.exists():
                break
            if proc.poll() is not None:
                errors.print(f"the local stack failed to start; see {LOG_FILE}")
                PID_FILE.unlink(missing_ok=True)
                sys.exit(1)
            time.sleep(0.1)
        else:
            errors.print(f"the local stack did not come up within 180 s; see {LOG_FILE}")
            sys.exit(1)
    console.print(env_file.read_text(), end="", soft_wrap=True, highlight=False)
    errors.print(f"local stack up (pid {proc.pid}); `source {env_file}`; `fleet dev down` stops it")
