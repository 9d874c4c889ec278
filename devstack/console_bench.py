"""Time every console page over a million workflows and a million cost rows.

    python -m devstack.console_bench [--server postgresql://postgres@127.0.0.1:5432/postgres]
                                     [--rows 1000000] [--runs 7] [--dead-letters 100]

Migrates a scratch database (so the console's indexes and the cost_daily rollup
exist), loads it with ``generate_series`` (90 days of history, 5,000 users; the
rollup's trigger sums the cost rows as they go in), dead-letters ``--dead-letters``
messages through an in-process worker (forced to Azure, which is not configured),
starts the console in-process (SQS from AWS_ENDPOINT_URL_SQS or a LocalStack started
here) and times each page over HTTP with a bearer token: one warm-up, then the median
and the worst of ``runs``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from contextlib import ExitStack

import httpx
import psycopg
from aiohttp import web

from devstack.localstack import LocalStack, free_port
from devstack.postgres import scratch_database
from worker.config import Settings, load_settings
from worker.console import build_app
from worker.consumer import run_worker
from worker.contract import Envelope, Intent
from worker.observability import configure_logging
from worker.queue import QueueClient, QueueSpec, create_queues
from worker.store import migrate

TOKEN = "bench-operator-token-0123456789"
LOAD_WORKFLOWS = """
INSERT INTO workflows (id, type, user_id, status, priority, attempts, provider, error_code,
                       created_at, updated_at, completed_at)
SELECT 'wf-' || g,
       (ARRAY['content_planning','message_generation','content_validation',
              'campaign_execution'])[1 + g %% 4],
       'u' || (g %% 5000),
       CASE WHEN g %% 50 = 0 THEN 'failed' ELSE 'completed' END,
       'medium', 1, CASE WHEN g %% 3 = 0 THEN 'azure' ELSE 'openai' END,
       CASE WHEN g %% 50 = 0 THEN 'rate_limit' END,
       now() - make_interval(secs => g * 7776000.0 / %(n)s),
       now() - make_interval(secs => g * 7776000.0 / %(n)s) + interval '2 seconds',
       CASE WHEN g %% 50 <> 0 THEN now() - make_interval(secs => g * 7776000.0 / %(n)s)
            + interval '2 seconds' END
  FROM generate_series(1, %(n)s) AS g
"""
LOAD_CALLS = """
INSERT INTO llm_calls (workflow_id, user_id, intent_type, provider, model, prompt_tokens,
                       completion_tokens, usage_source, cost_usd, price_version, duration_ms,
                       attempt, outcome, created_at)
SELECT 'wf-' || g, 'u' || (g %% 5000),
       (ARRAY['content_planning','message_generation','content_validation',
              'campaign_execution'])[1 + g %% 4],
       CASE WHEN g %% 3 = 0 THEN 'azure' ELSE 'openai' END,
       CASE WHEN g %% 3 = 0 THEN 'gpt-4o' ELSE 'gpt-4o-mini' END,
       100 + g %% 400, 20 + g %% 200, 'api', (g %% 1000) * 0.000001, 'bench', 300 + g %% 900,
       1, 'ok', now() - make_interval(secs => g * 7776000.0 / %(n)s)
  FROM generate_series(1, %(n)s) AS g
"""


def load(url: str, rows: int) -> float:
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(LOAD_WORKFLOWS.encode(), {"n": rows})
        conn.execute(LOAD_CALLS.encode(), {"n": rows})
        conn.execute(b"VACUUM ANALYZE workflows")
        conn.execute(b"VACUUM ANALYZE llm_calls")
        conn.execute(b"VACUUM ANALYZE cost_daily")  # what autovacuum does: index-only scans
    return time.perf_counter() - started


def pages(rows: int) -> list[str]:
    middle = f"wf-{rows // 2}"
    return [
        "/",
        "/workflows",
        "/workflows?user=u42",
        "/workflows?status=failed",
        "/workflows?type=campaign_execution&since=2026-01-01",
        f"/workflows/{middle}",
        "/costs?since=7d&by=user",
        "/costs?since=7d&by=provider",
        "/costs?since=7d&by=intent",
        "/costs?since=7d&by=model",
        "/costs?since=7d&by=day",
        "/costs?since=30d&by=user",
        "/costs?since=30d&by=provider",
        "/costs?since=30d&by=intent",
        "/costs?since=30d&by=model",
        "/costs?since=30d&by=day",
        "/costs?since=90d&by=user",
        "/costs.csv?since=7d&by=user",
        "/costs.csv?since=30d&by=user",
        "/dlq",
        "/dlq?user=u7",
    ]


SHORT_READ = "did not come back"  # the dead-letters page's note on a partial read


async def time_pages(base: str, paths: list[str], runs: int) -> list[tuple[str, float, float]]:
    results = []
    short = timed = 0
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        first = await client.get("/workflows?since=2000-01-01")
        paths.insert(5, _deep_page(first.text))
        for path in paths:
            (await client.get(path)).raise_for_status()  # warm-up
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                answer = await client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                answer.raise_for_status()
                if path.startswith("/dlq"):
                    timed += 1
                    short += SHORT_READ in answer.text
            results.append((path, statistics.median(times), max(times)))
    print(f"dead-letters pages that showed fewer messages than the depth: {short} of {timed}")
    return results


def _deep_page(html: str) -> str:
    """The 'older' link of the first page: keyset pagination costs the same on any page."""
    marker = 'href="/workflows?'
    start = html.index(marker) + len('href="')
    return html[start : html.index('"', start)].replace("&amp;", "&")


async def dead_letter(settings: Settings, count: int) -> None:
    """Put ``count`` messages in the DLQ the way production does: a worker gives up on
    intents forced to a provider that is not configured."""
    if count <= 0:
        return
    intents = [
        Envelope.wrap(Intent.model_validate({
            "type": "message_generation", "userId": f"u{i}", "forceProvider": "azure",
            "data": {"context": f"bench {i}"},
        }))
        for i in range(count)
    ]
    async with QueueClient.from_settings(settings) as queue:
        for start in range(0, count, 10):
            await queue.send_envelopes(intents[start : start + 10])
    stats = await run_worker(settings, until_idle=True, handle_signals=False)
    print(f"dead-lettered {stats.outcomes.get('dead_lettered', 0)} messages", flush=True)


async def run(server: str, rows: int, runs: int, endpoint: str, dead: int) -> None:
    with scratch_database(server, prefix="console_bench") as url:
        await migrate(url)
        print(f"loading {rows:,} workflows and {rows:,} llm_calls ...", flush=True)
        print(f"loaded in {load(url, rows):.1f} s", flush=True)
        settings = load_settings(
            database_url=url,
            sqs_endpoint_url=endpoint,
            queue_name=f"console-bench-{uuid.uuid4().hex[:8]}",
            console_tokens=f"bench:operator:{TOKEN}",
            openai_api_key="bench-unused-key-0123456789",  # never called: Azure is forced
            openai_base_url="http://127.0.0.1:9/v1",
            wait_seconds=1,
            max_receives=1,
            log_level="WARNING",
            health_port=0,
            cloudwatch_enabled=False,
        )
        await create_queues(
            QueueSpec.from_settings(settings), endpoint=endpoint, region=settings.aws_region
        )
        await dead_letter(settings, dead)
        runner = web.AppRunner(build_app(settings))
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            results = await time_pages(f"http://127.0.0.1:{port}", pages(rows), runs)
        finally:
            await runner.cleanup()
    print(f"\n| page | median ms | worst ms (of {runs}) |\n|---|---:|---:|")
    for path, median, worst in results:
        print(f"| `{path}` | {median:.0f} | {worst:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--server",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--dead-letters", type=int, default=100)
    args = parser.parse_args()
    configure_logging("WARNING", "console")  # the dead-lettering worker's lines are noise here
    with ExitStack() as stack:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_SQS")
        if not endpoint:
            endpoint = stack.enter_context(LocalStack()).endpoint
        asyncio.run(run(args.server, args.rows, args.runs, endpoint, args.dead_letters))


if __name__ == "__main__":
    main()
