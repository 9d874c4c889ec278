"""What `fleet dlq replay` does between reading the DLQ and printing: pick, check, copy."""

from __future__ import annotations

import asyncio
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from worker.commands.common import errors
from worker.ops.dlq import DlqEntry, DlqFilter, DlqWorkbench, ReplayResult, rest_of

__all__ = ["ReplayPlan"]


class ReplayPlan:
    """What `dlq replay` does between reading the DLQ and printing: pick, check, copy."""

    def __init__(
        self,
        chosen: DlqFilter,
        limit: int | None,
        rate: float | None,
        hold: int,
        *,
        dry_run: bool,
        force: bool,
    ) -> None:
        self.chosen, self.limit, self.rate, self.hold = chosen, limit, rate, hold
        self.dry_run, self.force = dry_run, force

    async def run(self, bench: DlqWorkbench) -> dict[str, Any]:
        """Read the DLQ, release what is not picked, refuse malformed without --force,
        copy the rest back (or only say what would go); the report is JSON-ready."""
        entries = await bench.scan(hold_seconds=self.hold)
        picked = [e for e in entries if self.chosen.matches(e)][: self.limit or None]
        await bench.release(rest_of(entries, picked))
        malformed = sum(e.error_class == "malformed" for e in picked)
        refused = bool(malformed) and not self.force and not self.dry_run
        report: dict[str, Any] = {
            "dryRun": self.dry_run,
            "refused": refused,
            "count": len(picked) if not refused else 0,
            "malformed": malformed,
            "messages": [e.as_dict() for e in picked],
        }
        if self.dry_run or refused:
            await bench.release(picked)
            return report
        done = await self._replay(bench, picked)
        report["count"] = len(done)
        copies = {r.entry.message.message_id: r.new_message_id for r in done}
        for row in report["messages"]:
            row["newMessageId"] = copies.get(row["dlqMessageId"])
        return report

    async def _replay(self, bench: DlqWorkbench, picked: list[DlqEntry]) -> list[ReplayResult]:
        done: list[ReplayResult] = []
        with Progress(
            TextColumn("replay"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=errors,
        ) as progress:
            task = progress.add_task("replay", total=len(picked))

            def advanced(result: ReplayResult) -> None:
                done.append(result)
                progress.advance(task)

            try:
                await bench.replay(picked, rate=self.rate, on_done=advanced)
            finally:  # interrupted: what was not copied is visible again at once
                await asyncio.shield(bench.release(rest_of(picked, [r.entry for r in done])))
        return done
