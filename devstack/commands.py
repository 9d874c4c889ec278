"""`fleet demo` and `fleet bench`: the fleet on a local stack it starts and stops itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from worker.commands.common import console, emit_json, errors, friendly, output_option, run_async
from worker.observability import configure_logging

__all__ = ["bench", "demo"]


@click.command()
@click.option("--verbose", is_flag=True, help="Show the worker's JSON logs.")
@output_option(legacy_json=True)
@friendly
def demo(as_json: bool, verbose: bool) -> None:
    """Run the whole fleet on a local stack it starts and stops itself.

    LocalStack SQS, PostgreSQL (DATABASE_URL/TEST_DATABASE_URL server or an
    embedded one) and a fake OpenAI; enqueues a sample mix including a
    malformed body, a permanent and a transient failure; drains it; prints
    what happened.
    """
    from devstack.demo import demo_settings, local_stack, run_demo

    level = "INFO" if verbose else "ERROR"
    starting = "starting the local stack (LocalStack, PostgreSQL, fake OpenAI)"
    with errors.status(starting) as spin, local_stack() as urls:
        settings = demo_settings(urls, log_level=level)
        configure_logging(settings.log_level, settings.log_format)
        summary = run_async(run_demo(settings, on_step=lambda text: spin.update(text)))
        spin.update("stopping the local stack")
    if as_json:
        emit_json(summary)
        return
    _print_summary(summary)


@click.command()
@click.option("--quick", is_flag=True, help="Smaller runs (about 2 minutes).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("bench/report.json"),
    show_default=True,
)
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("bench/report.png"),
    show_default=True,
)
@click.option(
    "--docs",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Also write the table into this page's bench block (docs/performance.md).",
)
@friendly
def bench(quick: bool, out: Path, chart: Path, docs: Path | None) -> None:
    """Benchmark the fleet against a bare SQS loop on the local stack; write a report."""
    from datetime import UTC, datetime

    from devstack.bench import run_bench
    from devstack.bench_report import into_docs, write
    from devstack.demo import local_stack

    with local_stack() as urls:
        report = run_async(run_bench(urls, quick=quick, log=lambda line: errors.print(line)))
    write(report, out, chart)
    if docs is not None:
        into_docs(report, docs, datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    console.print_json(json.dumps(report["summary"]))
    console.print(f"wrote {out} and {chart}")


def _print_summary(summary: dict[str, Any]) -> None:
    console.print(
        f"[bold]demo finished in {summary['elapsedSeconds']} s[/]: enqueued "
        f"{summary['enqueued']}, completed [green]{summary['completed']}[/], dead-lettered "
        f"[red]{summary['deadLettered']}[/], retried {summary['retried']}, "
        f"{summary['llmCalls']} LLM calls, cost ${summary['costUsd']}"
    )
    sends = ", ".join(f"{k} {v}" for k, v in sorted(summary.get("sends", {}).items()))
    console.print(f"OnlyFans sends: {sends or 'none'}")
    letters = Table(title="dead-lettered (reason recorded in Postgres)")
    for column in ("intent", "class", "code", "reason"):
        letters.add_column(column)
    for row in summary["deadLetters"]:
        letters.add_row(
            row["intentType"] or "-", row["errorClass"], row["errorCode"], row["reason"][:90]
        )
    console.print(letters)
    costs = Table(title="cost (USD)")
    costs.add_column("by")
    costs.add_column("name")
    costs.add_column("usd", justify="right")
    for name, value in summary["costByProvider"].items():
        costs.add_row("provider", name, value)
    for name, value in summary["costByIntent"].items():
        costs.add_row("intent", name, value)
    console.print(costs)
