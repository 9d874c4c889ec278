"""The web console through aiohttp's test client: who gets in, CSRF, headers, no secret
rendered, and the pages' data (search, keyset pages, CSV, escaping)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from tests.support import OPERATOR, TOKENS, VIEWER, Factory, dead_letter, query, sign_in
from worker.console import build_app, digest, parse_tokens
from worker.errors import ConfigError
from worker.ops.dlq import DlqWorkbench
from worker.queue import QueueClient, Received
from worker.store import Store

PAGES = ["/", "/workflows", "/workflows/x", "/dlq", "/costs", "/costs.csv", "/events",
         "/api/overview", "/api/workflows/x", "/static/console.js", "/static/nothing.css"]
POSTS = ["/dlq/replay", "/dlq/purge", "/logout"]


@pytest.fixture
async def client(make_settings: Factory) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    settings = await make_settings(console_tokens=TOKENS)
    async with TestClient(TestServer(build_app(settings))) as opened:
        yield opened


def assert_hardened(response: ClientResponse) -> None:
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_without_a_credential_every_page_is_401_and_nothing_else(
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    for path in PAGES:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
            got = await client.get(path, headers=headers)
            text = await got.text()
            assert got.status == 401, path
            assert got.headers["WWW-Authenticate"].startswith("Bearer")
            assert "/login" in text and len(text) < 200, text
            assert_hardened(got)
    for path in POSTS:
        got = await client.post(path, data={"all": "1"})
        assert got.status == 401, path
    forged = await client.get("/", cookies={"fleet_session": "made-up"})
    assert forged.status == 401
    style = await client.get("/static/console.css")  # the sign-in form's, and public
    assert style.status == 200 and style.content_type == "text/css"
    assert_hardened(style)
    form = await client.get("/login")
    assert form.status == 200 and "console.js" not in await form.text()


async def test_sign_in_sets_a_hardened_cookie_and_refuses_a_wrong_token(
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    form = await client.get("/login")
    assert_hardened(form)
    nonce = re.search(r'name="csrf" value="([^"]+)"', await form.text())
    assert nonce is not None
    wrong = await client.post("/login", data={"csrf": nonce.group(1), "token": "nope" * 5})
    assert wrong.status == 401 and "not recognised" in await wrong.text()
    no_nonce = await client.post("/login", data={"csrf": "forged", "token": VIEWER})
    assert no_nonce.status == 403
    form = await client.get("/login")
    nonce = re.search(r'name="csrf" value="([^"]+)"', await form.text())
    assert nonce is not None
    done = await client.post(
        "/login", data={"csrf": nonce.group(1), "token": VIEWER}, allow_redirects=False
    )
    assert done.status == 303
    cookie = done.headers["Set-Cookie"]
    assert "fleet_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # loopback: a plain-http browser must still send it


async def test_cookies_are_secure_off_loopback(make_settings: Factory) -> None:
    settings = await make_settings(console_tokens=TOKENS, console_host="0.0.0.0")
    async with TestClient(TestServer(build_app(settings))) as client:
        form = await client.get("/login")
        assert "Secure" in form.headers["Set-Cookie"]


async def test_every_post_needs_the_csrf_token(client: TestClient) -> None:  # type: ignore[type-arg]
    csrf = await sign_in(client, OPERATOR)
    for path in POSTS:
        for data in ({"all": "1"}, {"all": "1", "csrf": "wrong"}):
            got = await client.post(path, data=data)
            assert got.status == 403 and "CSRF" in await got.text(), path
            assert_hardened(got)
    ok = await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    assert ok.status == 303
    assert (await client.get("/")).status == 401  # the session is gone


async def test_a_viewer_cannot_operate(client: TestClient) -> None:  # type: ignore[type-arg]
    csrf = await sign_in(client, VIEWER)
    for path in ("/dlq/replay", "/dlq/purge"):
        got = await client.post(path, data={"all": "1", "csrf": csrf})
        assert got.status == 403 and "operator only" in await got.text()
        bearer = await client.post(
            path, data={"all": "1"}, headers={"Authorization": f"Bearer {VIEWER}"}
        )
        assert bearer.status == 403
    page = await client.get("/dlq")
    assert "Preview replay" not in await page.text()


async def test_no_token_or_hash_in_any_page(client: TestClient) -> None:  # type: ignore[type-arg]
    await sign_in(client, OPERATOR)
    secrets = [VIEWER, OPERATOR, digest(VIEWER), digest(OPERATOR)]
    for path in [p for p in PAGES if p != "/events"] + ["/login", "/static/console.js"]:
        got = await client.get(path)
        assert got.status in (200, 404), path
        text = await got.text()
        assert not any(s in text for s in secrets), path
        assert_hardened(got)
    api = await client.get("/api/overview", headers={"Authorization": f"Bearer {VIEWER}"})
    assert api.status == 200 and "figures" in await api.json()


async def test_search_keyset_pages_and_escaping(
    client: TestClient,  # type: ignore[type-arg]
    store: Store,
) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC) - timedelta(hours=1)
    hostile = f"<script>alert(1)</script>{uuid.uuid4().hex[:6]}"
    ids = [f"wf-{user}-{i:03d}" for i in range(60)] + [hostile]
    for i, ident in enumerate(ids):
        await query(store,
            "INSERT INTO workflows (id, type, user_id, status, created_at) VALUES"
            " (%s, 'message_generation', %s, 'completed', %s) RETURNING id",
            (ident, user, start + timedelta(seconds=i)),
        )
    await sign_in(client, VIEWER)
    first = await (await client.get("/workflows", params={"user": user})).text()
    assert "<script>alert(1)</script>" not in first and "&lt;script&gt;" in first
    shown = set(re.findall(rf"wf-{user}-\d{{3}}", first))
    assert len(shown) == 49  # 50 a page: the hostile one is the newest
    older = re.search(r'href="(/workflows\?[^"]+)" rel="next"', first)
    assert older is not None
    second = await (await client.get(older.group(1).replace("&amp;", "&"))).text()
    rest = set(re.findall(rf"wf-{user}-\d{{3}}", second))
    assert len(rest) == 11 and not rest & shown and 'rel="next"' not in second
    found = await client.get("/workflows", params={"id": ids[5]}, allow_redirects=False)
    assert found.status == 303 and found.headers["Location"].endswith(ids[5])
    detail = await client.get(f"/workflows/{ids[5]}")
    assert detail.status == 200 and "Intent (sanitized)" in await detail.text()


async def test_costs_page_and_csv(client: TestClient, store: Store) -> None:  # type: ignore[type-arg]
    user = f"=HYPERLINK(\"x\")-{uuid.uuid4().hex[:6]}"
    await query(store,
        "INSERT INTO llm_calls (workflow_id, user_id, intent_type, provider, model,"
        " prompt_tokens, completion_tokens, usage_source, cost_usd, price_version, duration_ms,"
        " attempt, outcome) VALUES ('w', %s, 'message_generation', 'openai', 'gpt-4o-mini',"
        " 10, 5, 'api', 0.5, 'v1', 10, 1, 'ok') RETURNING id",
        (user,),
    )
    await sign_in(client, VIEWER)
    page = await client.get("/costs", params={"since": "1d", "by": "model"})
    assert page.status == 200 and "gpt-4o-mini" in await page.text()
    assert (await client.get("/costs", params={"by": "1;drop"})).status == 400
    got = await client.get("/costs.csv", params={"since": "1d", "by": "user"})
    assert got.headers["Content-Type"].startswith("text/csv")
    text = await got.text()
    assert text.startswith("user,calls,tokens,usd") and f"'{user}" in text.replace('""', '"')


def test_token_settings_are_checked_and_hashed() -> None:
    book = parse_tokens(f"a:viewer:{VIEWER},b:operator:sha256:{digest(OPERATOR)}")
    assert book.check(VIEWER) is not None and book.check(OPERATOR) is not None
    assert book.check("x" * 20) is None and book.check("") is None
    for bad in ("", "a:admin:" + VIEWER, "a:viewer:short", "a:viewer", "a:viewer:sha256:12"):
        with pytest.raises(ConfigError, match="FLEET_CONSOLE_TOKENS"):
            parse_tokens(bad)


async def test_purge_wants_the_typed_count_and_is_audited(
    make_settings: Factory, store: Store
) -> None:
    settings = await make_settings(console_tokens=TOKENS)
    await dead_letter(settings, forced=2, malformed=0)
    async with TestClient(TestServer(build_app(settings))) as client:
        csrf = await sign_in(client, OPERATOR)
        asked = await client.post("/dlq/purge", data={"all": "1", "csrf": csrf})
        assert asked.status == 200 and "<code>purge 2</code>" in await asked.text()
        wrong = await client.post(
            "/dlq/purge", data={"all": "1", "csrf": csrf, "typed": "purge 3"}
        )
        assert wrong.status == 400
        assert "2 dead-lettered message(s)" in await (await client.get("/dlq")).text()
        done = await client.post(
            "/dlq/purge", data={"all": "1", "csrf": csrf, "typed": "purge 2"}
        )
        assert done.status == 200 and "Deleted 2 message(s)" in await done.text()
        assert "0 dead-lettered message(s)" in await (await client.get("/dlq")).text()
    audit = await query(store,
        "SELECT actor, role, count FROM console_audit WHERE action = 'purge'"
        " AND at > now() - interval '1 minute'",
    )
    assert {"actor": "otto", "role": "operator", "count": 2} in audit


async def test_the_dead_letters_page_never_waits_and_says_what_it_missed(
    make_settings: Factory, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQS's short polls may sample too few servers and bring nothing back. The page then
    shows what it has with a note (it never pays the workbench's one-second wait); the
    workbench's full read (`fleet dlq list`, replay, purge) still gets every message."""
    settings = await make_settings(console_tokens=TOKENS)
    await dead_letter(settings, forced=3, malformed=0)
    waits: list[int] = []
    real = QueueClient.receive_dlq

    async def short_polls_find_nothing(
        self: QueueClient, max_messages: int = 10, wait_seconds: int = 1, **kw: Any
    ) -> list[Received]:
        waits.append(wait_seconds)
        if wait_seconds == 0:
            return []  # an unlucky sample: nothing is read (or hidden)
        return await real(self, max_messages, wait_seconds, **kw)

    async with TestClient(TestServer(build_app(settings))) as client:
        await sign_in(client, OPERATOR)
        page = await (await client.get("/dlq")).text()
        assert "0 dead-lettered message(s)" not in page  # the real page reads all three
        assert "3 dead-lettered message(s)" in page and "quick pass" not in page
        monkeypatch.setattr(QueueClient, "receive_dlq", short_polls_find_nothing)
        page = await (await client.get("/dlq")).text()
        assert "brought back 0 of the 3 messages" in page
        assert "Preview replay of all matching" in page  # no count it cannot vouch for
        assert waits and set(waits) == {0}
        async with QueueClient.from_settings(settings) as queue:
            bench = DlqWorkbench(queue, store)
            everything = await bench.scan(hold_seconds=1)
            await bench.release(everything)
        assert len(everything) == 3 and 1 in waits  # the patient read waited, and got all
