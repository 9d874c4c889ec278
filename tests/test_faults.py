"""The fault suite: real `fleet run` processes, something breaks, then an audit.

Every workflow must end completed exactly once or in the DLQ with its reason,
and the audit counts effects where they land: every request that reached the
fake gateway is recorded, and each scenario must show exactly one delivery per
(creator, fan) send the workflows asked for, no delivery nobody asked for,
`sent` ledger rows equal to the sends, and no `failed` send. No configured
secret may appear in any log line. Sizes and outage lengths are
compressed for `make test`; `make faults` runs them larger (FLEET_FAULT_SIZE,
FLEET_FAULT_OUTAGE). Each scenario adds a row to the audit table printed at
the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from devstack import FakeConfig, FakeGateway, FakeLLM, FaultProxy
from tests.support import (
    API_KEY,
    SHUTDOWN_MARGIN,
    Factory,
    LoggedProcess,
    env_for,
    envelope,
    fleet,
    provider_settings,
    query,
    queue_for,
    send_bodies,
)
from worker.config import Settings
from worker.contract import Envelope
from worker.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

FLEET = [sys.executable, "-m", "worker.cli"]
SIZE = int(os.environ.get("FLEET_FAULT_SIZE", "40"))
OUTAGE = float(os.environ.get("FLEET_FAULT_OUTAGE", "6"))
DB_PASSWORD = "fault-suite-db-password-77"
TABLE: list[dict[str, Any]] = []
LOGS: list[str] = []


@dataclass
class Audit:
    """One row of the audit table; every column is counted, none is assumed."""

    scenario: str
    workflows: int  # workflows put on the queue
    completed: int
    dead_lettered: int
    missing: int  # neither completed nor in the DLQ with a reason
    sends: int  # (creator, fan) sends the workflows asked for
    delivered: int  # of those, delivered exactly once at the gateway
    duplicated: int  # deliveries beyond one per asked (creator, fan)
    unasked: int  # deliveries to a (creator, fan) no workflow asked for
    replayed: int  # requests the gateway answered from its idempotency store
    sent_rows: int  # onlyfans_sends rows marked sent
    failed_sends: int  # onlyfans_sends rows marked failed

    @property
    def ok(self) -> bool:
        return (
            self.missing == 0
            and self.delivered == self.sends
            and self.duplicated == 0
            and self.unasked == 0
            and self.sent_rows == self.sends
            and self.failed_sends == 0
        )

    def row(self) -> dict[str, Any]:
        return self.__dict__ | {"ok": self.ok}

    def check(self, completed: int) -> None:
        """The scenario's verdict: all ``completed``, each send delivered exactly once."""
        assert self.ok and self.completed == completed, self.row()


def work(n: int, tag: str, latency_ms: int = 0) -> list[Envelope]:
    slow = f"[[fake:slow:{latency_ms}]] " if latency_ms else ""
    return [
        envelope(
            {
                "type": "message_generation",
                "userId": f"{tag}-u{i % 7}",
                "recipientId": f"fan-{i}",
                "sendToOnlyFans": True,
                "data": {"context": f"{slow}{tag} {i}"},
            }
        )
        for i in range(n)
    ]


Pair = tuple[str, str]


def asked_pairs(envs: list[Envelope]) -> list[Pair]:
    """The (creator, fan) sends these workflows ask for."""
    return [
        (e.intent.user_id, e.intent.recipient_id)
        for e in envs
        if e.intent.send_to_only_fans and e.intent.recipient_id
    ]


def gateway_tally(gateway: FakeGateway, intended: list[Pair], asked: set[Pair]) -> dict[str, int]:
    """Deliveries against what was asked: ``intended`` are this scenario's sends,
    ``asked`` every send any workflow given to this gateway asked for."""
    got = Counter((d.creator_id, d.fan_id) for d in gateway.deliveries)
    mine = set(intended)
    return {
        "sends": len(intended),
        "delivered": sum(got[pair] == 1 for pair in mine),
        "duplicated": sum(max(0, got[pair] - 1) for pair in mine),
        "unasked": sum(n for pair, n in got.items() if pair not in asked),
        "replayed": sum(
            r.outcome == "replayed" and (r.creator_id, r.fan_id) in mine for r in gateway.requests
        ),
    }


async def ledger_tally(store: Store, ids: list[str]) -> dict[str, int]:
    rows = await query(
        store,
        "SELECT status, count(*) AS n FROM onlyfans_sends WHERE workflow_id = ANY(%s)"
        " GROUP BY status",
        (ids,),
    )
    counts = {r["status"]: int(r["n"]) for r in rows}
    return {"sent_rows": counts.get("sent", 0), "failed_sends": counts.get("failed", 0)}


async def audit(
    scenario: str,
    store: Store,
    gateway: FakeGateway,
    envs: list[Envelope],
    everything: list[Envelope] | None = None,
) -> Audit:
    """Count what happened to ``envs``; ``everything`` is all the work this gateway saw
    (deliveries for any of it are asked for), by default ``envs``."""
    ids = [str(e.workflow_id) for e in envs]
    rows = await query(
        store,
        "SELECT w.id, w.status, EXISTS (SELECT 1 FROM dead_letters d WHERE d.workflow_id = w.id)"
        " AS lettered FROM workflows w WHERE w.id = ANY(%s)",
        (ids,),
    )
    completed = sum(r["status"] == "completed" for r in rows)
    lettered = sum(r["status"] == "failed" and r["lettered"] for r in rows)
    asked = set(asked_pairs(everything or envs))
    result = Audit(
        scenario=scenario,
        workflows=len(ids),
        completed=completed,
        dead_lettered=lettered,
        missing=len(ids) - completed - lettered,
        **gateway_tally(gateway, asked_pairs(envs), asked),
        **await ledger_tally(store, ids),
    )
    TABLE.append(result.row())
    return result


async def settle(store: Store, envs: list[Envelope], within: float = 180) -> None:
    ids = [str(e.workflow_id) for e in envs]

    async def done() -> bool:
        rows = await query(
            store,
            "SELECT count(*) AS n FROM workflows w WHERE id = ANY(%s) AND (status = 'completed'"
            " OR (status = 'failed' AND EXISTS (SELECT 1 FROM dead_letters d"
            " WHERE d.workflow_id = w.id)))",
            (ids,),
        )
        sent = await query(
            store,
            "SELECT count(*) AS n FROM onlyfans_sends WHERE workflow_id = ANY(%s)"
            " AND status IN ('scheduled', 'sending')",
            (ids,),
        )
        return int(rows[0]["n"]) == len(ids) and int(sent[0]["n"]) == 0

    try:
        async with asyncio.timeout(within):
            while not await done():  # noqa: ASYNC110 - worker processes write the state
                await asyncio.sleep(0.3)
    except TimeoutError:
        states = await query(
            store,
            "SELECT status, error_code, count(*) AS n FROM workflows WHERE id = ANY(%s)"
            " GROUP BY 1, 2",
            (ids,),
        )
        sends = await query(
            store,
            "SELECT status, error_code, count(*) AS n FROM onlyfans_sends"
            " WHERE workflow_id = ANY(%s) GROUP BY 1, 2",
            (ids,),
        )
        raise AssertionError(f"not settled: workflows {states}, sends {sends}") from None


class Workers:
    """`fleet run` processes whose stderr is kept for the secret scan."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: list[LoggedProcess] = []

    async def start(self, count: int = 1) -> None:
        for _ in range(count):
            self.procs.append(await LoggedProcess.start(["run"], self.env))

    async def stop(self) -> list[int]:
        codes = []
        for proc in self.procs:
            code, log = await proc.finish(signal.SIGTERM)
            LOGS.append(log)
            codes.append(code)
        return codes


def fault_env(settings: Settings, **extra: str) -> dict[str, str]:
    return env_for(settings, FLEET_LOG_LEVEL="INFO", OPENAI_API_KEY=API_KEY, **extra)


async def until(check: Callable[[], Awaitable[bool]], within: float = 60) -> None:
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - other processes change the state
            await asyncio.sleep(0.2)


async def completed_count(store: Store, envs: list[Envelope]) -> int:
    rows = await query(
        store,
        "SELECT count(*) AS n FROM workflows WHERE id = ANY(%s) AND status = 'completed'",
        ([str(e.workflow_id) for e in envs],),
    )
    return int(rows[0]["n"])


def with_password(url: str, port: int | None = None) -> str:
    parts = conninfo_to_dict(url)
    parts["password"] = DB_PASSWORD
    if port is not None:
        parts.update(host="127.0.0.1", port=str(port))
    return make_conninfo(**parts)


# --- scenarios ---------------------------------------------------------------------
async def test_sigkill_mid_handler(make_settings: Factory, store: Store) -> None:
    with FakeGateway(token=API_KEY) as gateway:
        settings = await make_settings(
            send_gateway_url=gateway.endpoint,
            visibility_timeout=4,
            heartbeat_interval=1,
            concurrency=8,
        )
        envs = work(SIZE, "kill", latency_ms=600)
        await send_bodies(settings, list(envs))
        workers = Workers(
            fault_env(settings, DATABASE_URL=with_password(settings.require_database_url()))
        )
        await workers.start(2)
        await until(lambda: _at_least(store, envs, SIZE // 4))
        workers.procs[0].send_signal(signal.SIGKILL)
        await workers.start(1)
        await settle(store, envs)
        codes = await workers.stop()
        result = await audit("SIGKILL a worker mid-handler", store, gateway, envs)
    assert codes[0] == -signal.SIGKILL and codes[1:] == [0, 0]
    result.check(completed=SIZE)


async def _at_least(store: Store, envs: list[Envelope], n: int) -> bool:
    return await completed_count(store, envs) >= n


async def test_sigterm_under_load(make_settings: Factory, store: Store) -> None:
    with FakeGateway(token=API_KEY) as gateway:
        settings = await make_settings(
            send_gateway_url=gateway.endpoint, shutdown_grace=2, concurrency=8
        )
        envs = work(SIZE, "term", latency_ms=400)
        await send_bodies(settings, list(envs))
        workers = Workers(fault_env(settings))
        await workers.start(1)
        await until(lambda: _at_least(store, envs, SIZE // 4))
        started = asyncio.get_running_loop().time()
        first = await workers.stop()
        took = asyncio.get_running_loop().time() - started
        later = Workers(fault_env(settings))
        await later.start(1)
        await settle(store, envs)
        second = await later.stop()
        result = await audit("SIGTERM under load", store, gateway, envs)
    assert first == [0] and second == [0]
    assert took < settings.shutdown_grace + SHUTDOWN_MARGIN, f"exit took {took:.1f}s"
    result.check(completed=SIZE)


async def test_postgres_unavailable(make_settings: Factory, store: Store) -> None:
    url = (await make_settings()).require_database_url()
    parts = conninfo_to_dict(url)
    host = parts.get("host") or "127.0.0.1"
    proxy_args: dict[str, Any] = (
        {"unix_path": f"{host}/.s.PGSQL.{parts.get('port') or 5432}"}
        if host.startswith("/")
        else {"host": host, "port": int(parts.get("port") or 5432)}
    )
    with FakeGateway(token=API_KEY) as gateway, FaultProxy(**proxy_args) as proxy:
        settings = await make_settings(
            send_gateway_url=gateway.endpoint,
            concurrency=8,
            retry_base_seconds=1,
            retry_max_seconds=3,
            max_receives=50,
        )
        envs = work(SIZE, "pg", latency_ms=300)
        await send_bodies(settings, list(envs))
        workers = Workers(fault_env(settings, DATABASE_URL=with_password(url, proxy.port)))
        await workers.start(1)
        await until(lambda: _at_least(store, envs, SIZE // 5))
        proxy.cut()
        await asyncio.sleep(OUTAGE)
        proxy.restore()
        await settle(store, envs)
        codes = await workers.stop()
        result = await audit(f"PostgreSQL down {OUTAGE:g}s", store, gateway, envs)
    assert codes == [0]
    result.check(completed=SIZE)
    assert "database" in LOGS[-1] or "store" in LOGS[-1]


async def test_sqs_unavailable(make_settings: Factory, store: Store, sqs_endpoint: str) -> None:
    port = int(sqs_endpoint.rsplit(":", 1)[1])
    with FakeGateway(token=API_KEY) as gateway, FaultProxy(host="127.0.0.1", port=port) as proxy:
        settings = await make_settings(
            send_gateway_url=gateway.endpoint,
            concurrency=8,
            sqs_endpoint_url=f"http://127.0.0.1:{proxy.port}",
            wait_seconds=2,
            liveness_seconds=60,
        )
        envs = work(SIZE, "sqs", latency_ms=200)
        workers = Workers(fault_env(settings))
        await workers.start(1)
        await send_bodies(settings, list(envs[: SIZE // 2]))
        await until(lambda: _at_least(store, envs, SIZE // 5))
        proxy.cut()
        await asyncio.sleep(OUTAGE)
        proxy.restore()
        await send_bodies(settings, list(envs[SIZE // 2 :]))
        await settle(store, envs)
        codes = await workers.stop()
        result = await audit(f"SQS endpoint down {OUTAGE:g}s", store, gateway, envs)
    seen = ("receive_failed", "ReceiveMessage failed", "SendMessage failed", "Batch failed")
    assert codes == [0] and any(sign in LOGS[-1] for sign in seen)
    result.check(completed=SIZE)


async def test_provider_faults_then_a_dead_provider(make_settings: Factory, store: Store) -> None:
    flaky = FakeConfig(fault_rate=0.3, timeout_sleep=1.5, seed=3)
    with (
        FakeGateway(token=API_KEY) as gateway,
        FakeLLM(api_key=API_KEY, config=flaky) as openai,
        FakeLLM(
            api_key=API_KEY, config=FakeConfig(fault_rate=0.3, timeout_sleep=1.5, seed=4)
        ) as azure,
    ):
        settings = await make_settings(
            **provider_settings(openai, azure),
            send_gateway_url=gateway.endpoint,
            concurrency=16,
            max_receives=10,
            breaker_cooldown=5,
        )
        env = fault_env(settings, AZURE_OPENAI_API_KEY=API_KEY)
        first = work(SIZE, "flaky")
        await send_bodies(settings, list(first))
        workers = Workers(env)
        await workers.start(1)
        await settle(store, first)
        openai.config.dead = True  # OpenAI down for the rest of the run
        second = work(SIZE, "dead")
        await send_bodies(settings, list(second))
        await settle(store, second)
        await workers.stop()
        both = first + second
        flaky_audit = await audit("providers 30% transient faults", store, gateway, first, both)
        dead_audit = await audit("providers 30% faults, OpenAI dead", store, gateway, second, both)
    flaky_audit.check(completed=SIZE)
    dead_audit.check(completed=SIZE)
    assert "circuit_open" in LOGS[-1] and "provider_fallback" in LOGS[-1]


def hostile_bodies() -> list[tuple[str, str]]:
    """(label, body) pairs: malformed or hostile, each must end in the DLQ with a reason."""
    ok = {"type": "message_generation", "userId": "h", "data": {"context": "x"}}
    bodies: list[tuple[str, str]] = [
        ("empty", ""),
        ("space", " "),
        ("null", "null"),
        ("number", "42"),
        ("string", '"hi"'),
        ("list", "[]"),
        ("truncated", '{"type": "message_generation", "userId": "h"'),
        ("trailing garbage", json.dumps(ok) + "}}"),
        ("nan", '{"type": NaN}'),
        ("deep nesting", "[" * 10_000 + "]" * 10_000),
        ("deep object", json.dumps({"type": "content_planning", "userId": "h", "data": _nest(60)})),
        ("bom", "\ufeff" + json.dumps(ok)),
        ("utf-16 surrogate", '{"type": "\\ud800"}'),
    ]
    wrong = [
        ("type int", {**ok, "type": 5}),
        ("user int", {**ok, "userId": 5}),
        ("user empty", {**ok, "userId": ""}),
        ("user huge", {**ok, "userId": "u" * 10_000}),
        ("data list", {**ok, "data": [1, 2]}),
        ("priority bad", {**ok, "priority": "urgent"}),
        ("force bad", {**ok, "forceProvider": "anthropic"}),
        ("extra field", {**ok, "evil": 1}),
        ("platforms too many", {**ok, "platforms": ["x"] * 100}),
        ("sendToOnlyFans no recipient", {**ok, "sendToOnlyFans": True}),
        (
            "campaign no recipients",
            {"type": "campaign_execution", "userId": "h", "data": {"brief": "b"}},
        ),
        (
            "campaign empty list",
            {"type": "campaign_execution", "userId": "h", "data": {"brief": "b", "recipients": []}},
        ),
        (
            "planning days 99",
            {"type": "content_planning", "userId": "h", "data": {"goal": "g", "days": 99}},
        ),
        ("validation no content", {"type": "content_validation", "userId": "h", "data": {}}),
        ("envelope version 2", {"version": 2, "workflowId": str(uuid.uuid4()), "intent": ok}),
        ("envelope bad uuid", {"version": 1, "workflowId": "../../etc/passwd", "intent": ok}),
        ("envelope no intent", {"version": 1, "workflowId": str(uuid.uuid4())}),
        (
            "envelope intent string",
            {"version": 1, "workflowId": str(uuid.uuid4()), "intent": "message_generation"},
        ),
        ("internal send no id", {"type": "onlyfans_send", "userId": "h", "data": {}}),
        ("recipient int", {**ok, "recipientId": 7}),
        ("platforms not list", {**ok, "platforms": "onlyfans"}),
        ("traceContext string", {**ok, "traceContext": "abc"}),
        ("contentType huge", {**ok, "contentType": "c" * 1000}),
        ("context huge", {**ok, "data": {"context": "x" * 200_000}}),
        ("maxChars negative", {**ok, "data": {"context": "x", "maxChars": -5}}),
        ("tone int", {**ok, "data": {"context": "x", "tone": 5}}),
        ("debounce unknown", {**ok, "data": {"context": "x", "debounce": "merge"}}),
        (
            "rules object",
            {"type": "content_validation", "userId": "h", "data": {"content": "c", "rules": {}}},
        ),
        ("goal empty", {"type": "content_planning", "userId": "h", "data": {"goal": ""}}),
        (
            "recipients bools",
            {
                "type": "campaign_execution",
                "userId": "h",
                "data": {"brief": "b", "recipients": [True, False]},
            },
        ),
        (
            "recipients too many",
            {
                "type": "campaign_execution",
                "userId": "h",
                "data": {"brief": "b", "recipients": ["r"] * 10_001},
            },
        ),
        (
            "enqueuedAt bad",
            {
                "version": 1,
                "workflowId": str(uuid.uuid4()),
                "intent": ok,
                "enqueuedAt": "yesterday",
            },
        ),
        ("workflowId int", {"version": 1, "workflowId": 5, "intent": ok}),
        ("send id negative", {"type": "onlyfans_send", "userId": "h", "data": {"sendId": -1}}),
        (
            "internal send missing",
            {"type": "onlyfans_send", "userId": "h", "data": {"sendId": 987654321}},
        ),
    ]
    bodies += [(label, json.dumps(body)) for label, body in wrong]
    injections = [
        "'; DROP TABLE workflows; --",
        "$(rm -rf /)",
        "<script>alert(1)</script>",
        "{{7*7}}",
        "${jndi:ldap://x/a}",
        "\u0000nul",
        "\u202eevil",
        "🙂" * 50,
        "A" * 5000,
        "%s%s%s%n",
        "..\\..\\windows",
        "\r\nSet-Cookie: x=y",
    ]
    for i, text in enumerate(injections):
        bodies.append((f"injection type {i}", json.dumps({"type": text, "userId": "h"})))
        bodies.append(
            (f"injection id {i}", json.dumps({"version": 1, "workflowId": text, "intent": ok}))
        )
        bodies.append(
            (
                f"injection data {i}",
                json.dumps({"type": "campaign_execution", "userId": "h", "data": {"brief": text}}),
            )
        )
        bodies.append((f"injection key {i}", json.dumps({**ok, text[:40] or "k": 1})))
    unknown = [
        "teleport",
        "MESSAGE_GENERATION",
        "message generation",
        "content_planning ",
        "",
        "null",
        "campaign_execution\u0000",
        "1",
        "__proto__",
        "constructor",
    ]
    bodies += [(f"unknown {t!r}", json.dumps({"type": t, "userId": "h"})) for t in unknown]
    return bodies


def _nest(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


async def test_hostile_corpus_ends_in_the_dlq_and_no_worker_crashes(
    make_settings: Factory, store: Store
) -> None:
    corpus = hostile_bodies()
    assert len(corpus) >= 100
    with FakeGateway(token=API_KEY) as gateway:
        settings = await make_settings(send_gateway_url=gateway.endpoint, concurrency=16)
        ids = []
        async with queue_for(settings) as queue:
            for _, body in corpus:
                ids.append(await queue.send(body or " ", {}))
        workers = Workers(fault_env(settings))
        await workers.start(1)

        async def all_lettered() -> bool:
            rows = await query(
                store,
                "SELECT count(DISTINCT message_id) AS n FROM dead_letters"
                " WHERE message_id = ANY(%s)",
                (ids,),
            )
            return int(rows[0]["n"]) == len(ids)

        try:
            await until(all_lettered, within=120)
        except TimeoutError:
            found = await query(
                store,
                "SELECT DISTINCT message_id FROM dead_letters WHERE message_id = ANY(%s)",
                (ids,),
            )
            have = {r["message_id"] for r in found}
            lost = [label for (label, _), mid in zip(corpus, ids, strict=True) if mid not in have]
            await workers.stop()
            errors = [line for line in LOGS[-1].splitlines() if "error" in line][-8:]
            raise AssertionError(f"no dead-letter row for: {lost[:5]}; {errors}") from None
        alive = workers.procs[0].returncode is None
        codes = await workers.stop()
        letters = await query(
            store,
            "SELECT DISTINCT ON (message_id) message_id, error_code, error_message"
            " FROM dead_letters WHERE message_id = ANY(%s) ORDER BY message_id, id",
            (ids,),
        )
        # the producer side: an oversize message is refused before it is sent
        big = json.dumps(
            {
                "type": "content_validation",
                "userId": "h",
                "data": {"content": "c", "notes": "x" * 300_000},
            }
        )
        oversize = Path(tempfile.mkdtemp()) / "oversize.jsonl"
        oversize.write_text(big + "\n")
        refused = fleet(["enqueue", "--file", str(oversize)], env_for(settings))
        async with queue_for(settings) as queue:
            dlq = await queue.total_depth(dlq=True)
        completed = await query(
            store,
            "SELECT count(*) AS n FROM workflows WHERE id = ANY(%s) AND status = 'completed'",
            (ids,),
        )
        result = Audit(
            scenario=f"hostile corpus ({len(corpus)} bodies + 1 oversize)",
            workflows=len(corpus),
            completed=int(completed[0]["n"]),
            dead_lettered=len(letters),
            missing=len(corpus) - len(letters),
            **gateway_tally(gateway, [], set()),  # nothing here may reach a fan
            **await ledger_tally(store, ids),
        )
    TABLE.append(result.row())
    assert alive and codes == [0]
    result.check(completed=0)
    assert len(letters) == len(corpus) and dlq.visible == len(corpus)
    assert all(row["error_code"] not in ("", "unknown") and row["error_message"] for row in letters)
    assert refused.returncode == 1 and "over the queue's limit" in refused.stderr


COLUMNS = (  # (heading, key) of the printed table; the JSON report has every field
    ("wf", "workflows"),
    ("done", "completed"),
    ("dlq", "dead_lettered"),
    ("miss", "missing"),
    ("sends", "sends"),
    ("dlvd", "delivered"),
    ("dup", "duplicated"),
    ("unask", "unasked"),
    ("rply", "replayed"),
    ("sent", "sent_rows"),
    ("fail", "failed_sends"),
)


def test_no_secret_in_any_log_line_and_the_audit_table() -> None:
    assert LOGS, "the scenarios above ran no worker"
    secrets = [API_KEY, DB_PASSWORD]
    leaked = [s for s in secrets for log in LOGS if s in log]
    lines = sum(log.count("\n") for log in LOGS)
    print("\n" + f"{'scenario':40}" + "".join(f" {h:>5}" for h, _ in COLUMNS) + "  ok")
    for row in TABLE:
        cells = "".join(f" {row[key]:>5}" for _, key in COLUMNS)
        print(f"{row['scenario'][:40]:40}{cells}  {'yes' if row['ok'] else 'NO'}")
    print(f"secrets: {len(secrets)} configured, {lines} log lines scanned, {len(leaked)} found")
    report = os.environ.get("FLEET_FAULT_REPORT")
    if report:
        scan = {"secrets": len(secrets), "log_lines": lines, "leaked": len(leaked)}
        with open(report, "w", encoding="utf-8") as handle:
            json.dump({"scenarios": TABLE, "secret_scan": scan}, handle, indent=2)
    assert not leaked
    assert TABLE and all(row["ok"] for row in TABLE)
