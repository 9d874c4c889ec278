"""A fault run at fleet level: both fake providers inject 30% transient faults.

Every workflow must complete, and every campaign send must reach its fan
exactly once at the fake gateway with its ledger row `sent`. Size from
FLEET_FAULT_RUN_SIZE (default 150; the closing figures used 500). The run's
figures are printed and written to ``fault-run.json`` in the test's temp dir.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from devstack import FakeConfig, FakeGateway, FakeLLM
from devstack.fake_llm import FAULT_KINDS
from tests.support import API_KEY, Factory, drain, envelope, provider_settings, query, send_bodies
from worker.providers import PriceTable
from worker.store import Store

SIZE = int(os.environ.get("FLEET_FAULT_RUN_SIZE", "150"))


def mix(size: int) -> list:
    envs = []
    for i in range(size):
        kind = i % 4
        if kind == 0:
            intent = {
                "type": "content_validation",
                "userId": f"u{i % 9}",
                "data": {"content": f"caption number {i % 10}"},
            }
        elif kind == 1:
            intent = {
                "type": "message_generation",
                "userId": f"u{i % 9}",
                "data": {"context": f"fan {i} renewed", "fanName": f"F{i}"},
            }
        elif kind == 2:
            intent = {
                "type": "content_planning",
                "userId": f"u{i % 9}",
                "data": {"goal": f"goal {i % 5}", "days": 3},
            }
        else:
            intent = {
                "type": "campaign_execution",
                "userId": f"u{i % 9}",
                "data": {"brief": "weekend promo", "recipients": [f"r{i}a", f"r{i}b"]},
            }
        envs.append(envelope(intent))
    return envs


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_every_workflow_completes_under_30_percent_faults(
    make_settings: Factory, store: Store, tmp_path: Path
) -> None:
    config = FakeConfig(fault_rate=0.3, faults=FAULT_KINDS, timeout_sleep=1.5, seed=5)
    with (
        FakeGateway(token=API_KEY) as gateway,
        FakeLLM(api_key=API_KEY, config=config) as openai,
        FakeLLM(
            api_key=API_KEY, config=FakeConfig(fault_rate=0.3, timeout_sleep=1.5, seed=6)
        ) as azure,
    ):
        settings = await make_settings(
            **provider_settings(openai, azure),
            send_gateway_url=gateway.endpoint,
            concurrency=64,
            pollers=4,
            max_receives=8,
            breaker_cooldown=0.5,
            cache_ttl=600,
            visibility_timeout=20,
            heartbeat_interval=5,
        )
        envs = mix(SIZE)
        await send_bodies(settings, list(envs))
        stats = await drain(settings)
        ids = [str(e.workflow_id) for e in envs]
        rows = await query(
            store,
            "SELECT status, count(*) AS n FROM workflows WHERE id = ANY(%s) GROUP BY status",
            (ids,),
        )
        statuses = {r["status"]: int(r["n"]) for r in rows}
        calls = await query(
            store,
            "SELECT provider, model, outcome, cache_hit, prompt_tokens, completion_tokens,"
            " cost_usd, error_code FROM llm_calls WHERE workflow_id = ANY(%s)",
            (ids,),
        )
        faults = dict(openai.faults + azure.faults)
        ledger = await query(store,
            "SELECT status, count(*) AS n FROM onlyfans_sends WHERE campaign_id = ANY(%s)"
            " GROUP BY status",
            (ids,),
        )
        delivered = Counter((d.creator_id, d.fan_id) for d in gateway.deliveries)
    asked = Counter(
        (e.intent.user_id, fan)
        for e in envs
        if e.intent.type == "campaign_execution"
        for fan in e.intent.data["recipients"]
    )
    prices = PriceTable()
    hits = [c for c in calls if c["cache_hit"]]
    saved = sum(
        (
            prices.cost(c["provider"], c["model"], c["prompt_tokens"], c["completion_tokens"])
            for c in hits
        ),
        Decimal(0),
    )
    spent = sum((Decimal(c["cost_usd"]) for c in calls), Decimal(0))
    report = {
        "workflows": SIZE,
        "completed": statuses.get("completed", 0),
        "statuses": statuses,
        "sqs_redeliveries": stats.outcomes.get("retried", 0),
        "upstream_attempts": sum(1 for c in calls if not c["cache_hit"]),
        "failed_attempts": sum(1 for c in calls if c["outcome"] == "error"),
        "faults_injected": faults,
        "sends_asked": sum(asked.values()),
        "sends_delivered": sum(delivered.values()),
        "send_rows": {r["status"]: int(r["n"]) for r in ledger},
        "cache_hits": len(hits),
        "cost_usd": float(spent),
        "cost_saved_by_cache_usd": float(saved),
        "by_provider": {
            p: sum(1 for c in calls if c["provider"] == p) for p in ("openai", "azure")
        },
    }
    print("\nfault run:", json.dumps(report, indent=2))
    (tmp_path / "fault-run.json").write_text(json.dumps(report, indent=2))
    assert statuses == {"completed": SIZE}
    assert delivered == asked  # each asked (creator, fan) exactly once, nothing else
    assert report["send_rows"] == {"sent": sum(asked.values())}
    assert report["failed_attempts"] > SIZE * 0.2  # faults really happened
    assert len(hits) > 0 and saved > 0
