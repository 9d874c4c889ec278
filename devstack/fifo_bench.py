"""`fleet bench`, FIFO against standard: the same intents (20 users, so 20 groups) on a
standard queue and on a FIFO one, one process at concurrency 64, back to back in one
run (the machine is shared and noisy: compare the two kinds within a run, not across).

A FIFO fleet runs one message per group at a time, so with 20 groups at most 20 of the
64 slots work: with an instant provider the queue's round trips bound it; with the
seed's provider latency (P50 1.2 s) it tends to groups / latency.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from devstack.fake_llm import Latency

if TYPE_CHECKING:
    from devstack.bench import Result
    from devstack.demo import StackUrls

__all__ = ["fifo_scenarios"]

Step = Callable[[Awaitable[Any]], Awaitable["Result"]]
SEED_LATENCY = Latency(1200, 3500, 8200)


async def fifo_scenarios(urls: StackUrls, quick: bool, step: Step) -> dict[str, Any]:
    """Run both kinds under both providers; the FIFO/standard throughput ratios."""
    from devstack.bench import fleet_run  # the bench's own runner (it imports this module)

    instant = 600 if quick else 2000
    seeded = 300 if quick else 600
    out: dict[str, Any] = {"groups": 20, "concurrency": 64}
    for label, count, latency in (("instant", instant, None), ("seed", seeded, SEED_LATENCY)):
        rates = {}
        for kind in ("standard", "fifo"):
            result = await step(
                fleet_run(
                    urls,
                    f"{kind} queue, {label} provider, 20 users, concurrency 64",
                    count,
                    concurrency=64,
                    latency=latency,
                    fifo=kind == "fifo",
                )
            )
            rates[kind] = result.per_second
            out[f"{label}_{kind}_p95_s"] = result.extra["enqueue_to_done_p95_s"]
        out[f"{label}_standard_msgs_per_s"] = round(rates["standard"], 1)
        out[f"{label}_fifo_msgs_per_s"] = round(rates["fifo"], 1)
        out[f"{label}_fifo_ratio"] = round(rates["fifo"] / rates["standard"], 3)
    return out
