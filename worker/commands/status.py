"""`fleet status`: queue depths per lane, workflows by status, one workflow in detail."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from typing import Any

import click
from rich.table import Table

from worker.commands.common import (
    console,
    emit_json,
    errors,
    friendly,
    output_option,
    run_async,
    settings_from_env,
)
from worker.config import Settings

__all__ = ["status"]

_settings = settings_from_env
_run = run_async


@click.command()
@click.argument("workflow_id", required=False)
@output_option(legacy_json=True)
@friendly
def status(workflow_id: str | None, as_json: bool) -> None:
    """Queue depths per lane (visible, in flight, delayed, DLQ), workflows by status, cost
    today.

    With WORKFLOW_ID: that workflow, its result, its times (created, updated, next
    retry), every LLM attempt with its error, its calls and cost, and for a campaign
    its chunks and its sends by status (complete when every send is sent, failed or
    superseded).
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
        emit_json(report)
        return
    kind = " (FIFO: order per group)" if report.get("queueKind") == "fifo" else ""
    table = Table(title=f"queue {settings.queue_name}{kind}")
    for column in ("lane", "queue", "visible", "in flight", "delayed"):
        table.add_column(column)
    for lane, depths in report["lanes"].items():
        for name in ("queue", "dlq"):
            d = depths[name]
            table.add_row(lane, name, str(d["visible"]), str(d["inFlight"]), str(d["delayed"]))
    console.print(table)
    console.print(
        "workflows: "
        + (", ".join(f"{k} {v}" for k, v in sorted(report["workflows"].items())) or "none")
    )
    console.print(f"cost today: ${report['costTodayUsd']}")


def _next_retry(settings: Settings, report: dict[str, Any]) -> str | None:
    """When SQS shows a retrying workflow's message again (the backoff without jitter)."""
    from worker.consumer import retry_delay

    if report["status"] != "retrying" or report["attempts"] < 1:
        return None
    delay = retry_delay(
        report["attempts"],
        base=settings.retry_base_seconds,
        cap=settings.retry_max_seconds,
        jitter=0.0,
    )
    return (datetime.fromisoformat(report["updatedAt"]) + timedelta(seconds=delay)).isoformat()


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
    report["nextRetryAt"] = _next_retry(settings, report)
    if as_json:
        emit_json(report)
        return
    _print_workflow(workflow_id, report)


_FIELDS = {
    "type": "type",
    "userId": "user",
    "status": "status",
    "priority": "priority",
    "attempts": "attempts",
    "provider": "provider",
    "errorCode": "error",
    "errorMessage": "error message",
    "createdAt": "created",
    "updatedAt": "updated",
    "completedAt": "completed",
    "nextRetryAt": "next retry (about)",
    "llmCalls": "LLM calls",
    "costUsd": "cost (USD)",
}


def _print_workflow(workflow_id: str, report: dict[str, Any]) -> None:
    table = Table(title=f"workflow {workflow_id}", show_header=False)
    for key, label in _FIELDS.items():
        if report.get(key) not in (None, ""):
            table.add_row(label, str(report[key]))
    for key in ("progress", "chunks", "sends"):
        if report.get(key):
            table.add_row(key, ", ".join(f"{k} {v}" for k, v in sorted(report[key].items())))
    if "campaignComplete" in report:
        table.add_row("campaign complete", "yes" if report["campaignComplete"] else "no")
    console.print(table)
    calls = Table(title="LLM attempts, oldest first")
    for column in ("at", "provider", "model", "attempt", "receive", "outcome", "error", "ms"):
        calls.add_column(column, no_wrap=True)
    calls.add_column("usd", justify="right", no_wrap=True)
    for call in report["calls"]:
        calls.add_row(
            call["createdAt"][11:23],
            call["provider"],
            call["model"],
            str(call["attempt"]),
            str(call["receiveCount"]),
            call["outcome"],
            call["errorCode"] or "-",
            str(call["durationMs"]),
            call["costUsd"],
        )
    if report["calls"]:
        console.print(calls)
    else:
        console.print("no LLM calls")
    if report["result"] is not None:
        result = report["result"]
        text = result if isinstance(result, str) else json.dumps(result, indent=2)
        console.print("[bold]result[/]:")
        console.print(text, markup=False, highlight=False)
