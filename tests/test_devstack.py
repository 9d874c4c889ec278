"""`fleet dev up --detach` / `fleet dev down`: a local stack to work on by hand."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

from tests.support import FLEET


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLEET_", "AWS_", "OPENAI_", "AZURE_")) and k != "DATABASE_URL"
    }
    env.update(extra)
    return env


def _sourced(env_file: Path) -> dict[str, str]:
    values = {}
    for line in env_file.read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        values[name] = shlex.split(value)[0]
    return values


def test_dev_up_gives_a_stack_that_fleet_commands_use(
    tmp_path: Path, sqs_endpoint: str, pg_server: str
) -> None:
    env = _clean_env(AWS_ENDPOINT_URL_SQS=sqs_endpoint, TEST_DATABASE_URL=pg_server)

    def fleet(*args: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*FLEET, *args],
            cwd=tmp_path,
            env={**env, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    started = fleet("dev", "up", "--detach", "--queue", "dev-test")
    try:
        assert started.returncode == 0, started.stderr
        env_file = tmp_path / ".fleet-local" / "env"
        assert started.stdout == env_file.read_text()
        stack = _sourced(env_file)
        assert stack["DATABASE_URL"].startswith("postgresql://")
        assert stack["FLEET_QUEUE_NAME"] == "dev-test"
        use = {**stack, "FLEET_HEALTH_PORT": "0", "FLEET_WAIT_SECONDS": "1"}
        sent = fleet(
            "enqueue",
            "--type",
            "content_planning",
            "--user",
            "u-dev",
            "--data",
            json.dumps({"goal": "launch week", "context": "new photo set"}),
            extra=use,
        )
        assert sent.returncode == 0, sent.stderr
        workflow_id = sent.stdout.split("enqueued workflow ")[1].split()[0]
        ran = fleet("run", "--until-idle", extra=use)
        assert ran.returncode == 0, ran.stderr
        status = fleet("status", workflow_id, "--json", extra=use)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["status"] == "completed"
    finally:
        stopped = fleet("dev", "down")
    assert stopped.returncode == 0, stopped.stderr
    assert not (tmp_path / ".fleet-local" / "dev.pid").exists()
    assert fleet("dev", "down").returncode == 1
