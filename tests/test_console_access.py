"""Console sessions in PostgreSQL and the sign-in limit: a session outlives its console
process and is seen by a second one; sign-out deletes it; an expired one is refused
and cleaned; a session whose token left the settings is refused; repeated failed
sign-ins from one address get 429 with Retry-After, logged without the token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.support import OPERATOR, TOKENS, VIEWER, Factory, login_nonce, query, sign_in
from worker.console import build_app, digest
from worker.console.signin import SIGN_IN_LIMIT, SIGN_IN_WINDOW
from worker.store import Store

Client = TestClient[Any, Any]


@pytest.fixture(autouse=True)
async def no_failed_sign_ins(store: Store) -> AsyncIterator[None]:
    """Every test client signs in from 127.0.0.1: start and leave with a clean count."""
    forget = "DELETE FROM console_sign_in_failures WHERE remote = '127.0.0.1' RETURNING 1"
    await query(store, forget)
    yield
    await query(store, forget)


@pytest.fixture
async def client(make_settings: Factory) -> AsyncIterator[Client]:
    settings = await make_settings(console_tokens=TOKENS)
    async with TestClient(TestServer(build_app(settings))) as opened:
        yield opened


async def second(make_settings: Factory, tokens: str = TOKENS) -> Client:
    """Another console process on the same database (or the first one restarted)."""
    settings = await make_settings(console_tokens=tokens)
    opened = TestClient(TestServer(build_app(settings)))
    await opened.start_server()
    return opened


def cookie_of(client: Client) -> str:
    found = [c.value for c in client.session.cookie_jar if c.key == "fleet_session"]
    assert len(found) == 1
    return found[0]


async def test_a_session_outlives_its_process_and_sign_out_deletes_it(
    client: Client, make_settings: Factory, store: Store
) -> None:
    csrf = await sign_in(client, OPERATOR)
    cookie = cookie_of(client)
    (row,) = await query(store,
        "SELECT name, role, expires_at > now() + interval '7 hours' AS long FROM console_sessions"
        " WHERE cookie_hash = %s",
        (digest(cookie),),
    )
    assert row == {"name": "otto", "role": "operator", "long": True}
    assert not await query(store, "SELECT 1 FROM console_sessions WHERE cookie_hash = %s",
                           (cookie,))  # only the hash is kept
    other = await second(make_settings)
    try:
        jar = {"fleet_session": cookie}
        page = await other.get("/dlq", cookies=jar)
        assert page.status == 200 and "otto (operator)" in await page.text()
        wrong = await other.post("/logout", data={"csrf": "wrong"}, cookies=jar)
        assert wrong.status == 403  # the CSRF token travels with the session
        out = await other.post("/logout", data={"csrf": csrf}, cookies=jar, allow_redirects=False)
        assert out.status == 303
    finally:
        await other.close()
    assert (await client.get("/")).status == 401  # signed out everywhere
    assert not await query(store, "SELECT 1 FROM console_sessions WHERE cookie_hash = %s",
                           (digest(cookie),))


async def test_an_expired_session_is_refused_and_cleaned(client: Client, store: Store) -> None:
    await sign_in(client, VIEWER)
    hashed = digest(cookie_of(client))
    assert (await client.get("/")).status == 200
    await query(store,
        "UPDATE console_sessions SET expires_at = now() - interval '1 second'"
        " WHERE cookie_hash = %s RETURNING 1",
        (hashed,),
    )
    assert (await client.get("/")).status == 401
    assert not await query(store, "SELECT 1 FROM console_sessions WHERE cookie_hash = %s",
                           (hashed,))
    stale = digest("a-session-nobody-came-back-for")
    await query(store,
        "INSERT INTO console_sessions (cookie_hash, name, role, token_tag, csrf, expires_at)"
        " VALUES (%s, 'vera', 'viewer', 't', 'x', now() - interval '1 hour') RETURNING 1",
        (stale,),
    )
    await sign_in(client, VIEWER)  # a sign-in sweeps the expired ones away
    assert not await query(store, "SELECT 1 FROM console_sessions WHERE cookie_hash = %s",
                           (stale,))


async def test_a_session_ends_when_its_token_leaves_the_settings(
    client: Client, make_settings: Factory
) -> None:
    await sign_in(client, OPERATOR)
    jar = {"fleet_session": cookie_of(client)}
    same = await second(make_settings, f"otto:operator:sha256:{digest(OPERATOR)}")
    only_vera = await second(make_settings, f"vera:viewer:{VIEWER}")
    rotated = await second(make_settings, f"otto:operator:{OPERATOR}-rotated")
    try:
        assert (await same.get("/", cookies=jar)).status == 200  # the same token, hashed
        assert (await only_vera.get("/", cookies=jar)).status == 401  # otto is gone
        assert (await rotated.get("/", cookies=jar)).status == 401  # otto has a new token
    finally:
        for opened in (same, only_vera, rotated):
            await opened.close()


async def test_repeated_failed_sign_ins_are_refused_with_429(
    client: Client, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    from worker.observability import configure_logging

    configure_logging("INFO", "json")
    guess = "guessed-token-4f1d9a0c7b2e"
    capsys.readouterr()
    for _ in range(SIGN_IN_LIMIT):
        nonce = await login_nonce(client)
        wrong = await client.post("/login", data={"csrf": nonce, "token": guess})
        assert wrong.status == 401
    for token in (guess, VIEWER):  # the right token is refused too, until it clears
        nonce = await login_nonce(client)
        limited = await client.post("/login", data={"csrf": nonce, "token": token})
        assert limited.status == 429 and "Too many failed sign-ins" in await limited.text()
        assert 1 <= int(limited.headers["Retry-After"]) <= SIGN_IN_WINDOW
    assert (await client.get("/")).status == 401
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()
              if line.startswith("{")]
    refused = [e for e in events if e["event"] == "console_sign_in_refused"]
    throttled = [e for e in events if e["event"] == "console_sign_in_throttled"]
    assert [e["failures"] for e in refused] == list(range(1, SIGN_IN_LIMIT + 1))
    assert len(throttled) == 2 and throttled[0]["remote"] == "127.0.0.1"
    assert all(guess not in json.dumps(e) and VIEWER not in json.dumps(e) for e in events)
    await query(store,  # a minute later (time compressed: the rows are aged)
        "UPDATE console_sign_in_failures SET at = at - make_interval(secs => %s)"
        " WHERE remote = '127.0.0.1' RETURNING 1",
        (SIGN_IN_WINDOW + 1,),
    )
    await sign_in(client, VIEWER)
    assert not await query(store,
        "SELECT 1 FROM console_sign_in_failures WHERE remote = '127.0.0.1'")


async def test_a_burst_of_guesses_gets_no_more_than_the_limit(client: Client) -> None:
    nonce = await login_nonce(client)
    answers = await asyncio.gather(*(
        client.post("/login", data={"csrf": nonce, "token": f"burst-guess-{i:02d}-0123456789"})
        for i in range(3 * SIGN_IN_LIMIT)
    ))
    statuses = sorted(answer.status for answer in answers)
    assert statuses == [401] * SIGN_IN_LIMIT + [429] * (2 * SIGN_IN_LIMIT)


async def test_the_live_stream_ends_with_its_session(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker.console import pages_overview

    monkeypatch.setattr(pages_overview, "SSE_INTERVAL", 0.05)
    csrf = await sign_in(client, VIEWER)
    stream = await client.get("/events")
    assert stream.status == 200
    first = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 30)
    assert first.startswith(b"event: snapshot")
    out = await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    assert out.status == 303
    await asyncio.wait_for(stream.content.read(), 30)  # the server closes the stream
    assert stream.content.at_eof()
