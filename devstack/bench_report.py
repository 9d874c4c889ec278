"""The benchmark report: JSON, and a chart of rate and CPU per scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["chart", "into_docs", "table", "trace", "write"]

START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    names = [r["scenario"].replace(", ", "\n") for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5))
    left.barh(names, [r["per_second"] for r in results], color="#3b7dd8")
    left.set_xlabel("messages / s")
    left.invert_yaxis()
    right.barh(names, [r["cpu_seconds_per_1000"] for r in results], color="#d8843b")
    right.set_xlabel("CPU seconds per 1,000 messages (own processes)")
    right.invert_yaxis()
    right.set_yticklabels([])
    fig.suptitle("Hybrid Orchestrator fleet vs the queue's ceiling (LocalStack, 2 cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def table(report: dict[str, Any]) -> str:
    """The results as a Markdown table (also written beside the JSON)."""
    lines = [
        "| scenario | msg/s | CPU s / 1,000 msgs | s to steady | limit at end "
        "| overhead p99 ms | enqueue-to-done p99 s "
        "| peak RSS MB | cores: workers / queue server / Postgres / bench+fakes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["results"]:
        x = r["extra"]
        cores = x.get("cores_used", {})
        split = " / ".join(
            f"{cores.get(k, 0):.2f}"
            for k in ("workers", "queue_server", "postgres", "bench_and_fakes")
        )
        limits = x.get("limit_trace") or []
        last = f"{limits[-1][1]} ({limits[-1][2]})" if limits else "-"
        lines.append(
            f"| {r['scenario']} | {r['per_second']:.0f} | {r['cpu_seconds_per_1000']:.2f} "
            f"| {x.get('seconds_to_steady', '-')} | {last} "
            f"| {x.get('overhead_p99_ms', '-')} | {x.get('enqueue_to_done_p99_s', '-')} "
            f"| {x.get('peak_rss_mb', '-')} | {split} |"
        )
    return "\n".join(lines) + "\n"


def trace(report: dict[str, Any]) -> str:
    """The adaptive limit over time (seconds from spawn: limit, reason) per scenario."""
    lines = []
    for r in report["results"]:
        points = r["extra"].get("limit_trace") or []
        if points and points[-1][2] != "pinned":
            moves = ", ".join(f"{t:g} s: {n} ({why})" for t, n, why in points)
            lines.append(f"- {r['scenario']}: {moves}")
    return "\n".join(lines) + "\n"


def into_docs(report: dict[str, Any], path: Path, when: str) -> None:
    """Replace the block between the bench markers of ``path`` with this run's table."""
    text = path.read_text()
    if START not in text or END not in text:
        raise ValueError(f"{path} has no {START} ... {END} block")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    summary = report["summary"]
    block = (
        f"{START}\nLast `make bench` ({when}; ceiling {summary['ceiling_msgs_per_s']} msg/s):\n\n"
        f"{table(report)}\nThe adaptive limit during the run (from the worker's /metrics, "
        f"seconds since its spawn: limit (reason it last moved)):\n\n{trace(report)}{END}"
    )
    path.write_text(head + block + tail)


def write(report: dict[str, Any], out: Path, png: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(table(report))
    chart(report, png)
