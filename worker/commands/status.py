"""`fleet status`: queue depths, workflows by status, one workflow in detail."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.table import Table

from worker.commands.common import console, errors, friendly, run_async, settings_from_env
from worker.config import Settings

__all__ = ["status"]

_settings = settings_from_env
_run = run_async


@click.command()
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
