"""The web console in a real browser: Debian's headless Chromium driven by Playwright.

Without /usr/bin/chromium (or the playwright package) these tests skip with one line
saying why; with FLEET_REQUIRE_BROWSER=1 (CI) they fail instead. With
FLEET_CONSOLE_SCREENSHOTS=<dir> they also save a PNG of each page there (docs/console).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from devstack import FakeLLM
from devstack.localstack import free_port
from tests.support import API_KEY, Factory, drain, envelope, query, run_until, send_bodies
from worker.config import Settings
from worker.console import build_app
from worker.store import Store

CHROMIUM = "/usr/bin/chromium"
VIEWER = "viewer-token-0123456789abcdef"
OPERATOR = "operator-token-0123456789abcdef"
TOKENS = f"vera:viewer:{VIEWER},otto:operator:{OPERATOR}"
PAGES = ["/", "/workflows", "/dlq", "/costs", "/costs.csv", "/api/overview", "/workflows/x",
         "/static/console.js"]
SHOTS = os.environ.get("FLEET_CONSOLE_SCREENSHOTS")


def _missing(chromium: str = CHROMIUM) -> str | None:
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if not Path(chromium).exists():
        return f"no headless Chromium at {chromium} (apt-get install -y chromium)"
    return None


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    why = _missing()
    if why is not None:
        if os.environ.get("FLEET_REQUIRE_BROWSER") == "1":
            pytest.fail(f"FLEET_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(f"browser tests skipped: {why}")
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        launched = await driver.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            await launched.close()


async def serve(settings: Settings) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(build_app(settings))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


async def sign_in(browser: Any, base: str, token: str) -> Any:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.fill("input[name=token]", token)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")
    return page


async def shot(page: Any, name: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


async def test_every_page_is_401_without_a_credential(browser: Any, make_settings: Factory) -> None:
    runner, base = await serve(await make_settings(console_tokens=TOKENS))
    try:
        page = await (await browser.new_context()).new_page()
        for path in PAGES:
            response = await page.goto(base + path)
            assert response is not None and response.status == 401, path
            assert "sign in" in (await page.content())
        await page.goto(f"{base}/login")
        await shot(page, "sign-in")
    finally:
        await runner.cleanup()


async def test_live_throughput_moves_and_a_workflow_is_found_by_id(
    browser: Any, make_settings: Factory
) -> None:
    settings = await make_settings(console_tokens=TOKENS)
    runner, base = await serve(settings)
    try:
        page = await sign_in(browser, base, VIEWER)
        figure = "[data-figure=throughput]"
        before = float((await page.text_content(figure) or "0").removesuffix("/s"))
        stamp = await page.text_content("[data-updated]")
        envs = [
            envelope(
                {"type": "message_generation", "userId": f"load-{i}", "data": {"context": "hi"}}
            )
            for i in range(30)
        ]
        await send_bodies(settings, list(envs))
        stats = await drain(settings)
        assert stats.outcomes.get("completed") == 30, stats.outcomes
        await page.wait_for_function(
            "([sel, v]) => parseFloat(document.querySelector(sel).textContent) > v",
            arg=[figure, before],
            timeout=20_000,
        )
        assert await page.text_content("[data-updated]") != stamp  # the SSE stream ticks
        await shot(page, "overview")
        wanted = str(envs[7].workflow_id)
        await page.click("a[href='/workflows']")
        await page.fill("input[name=id]", wanted)
        await page.click("form.filters button")
        await page.wait_for_url(f"{base}/workflows/{wanted}")
        assert await page.text_content("[data-status]") == "completed"
        assert "load-7" in await page.content()
        await shot(page, "workflow")
        await page.goto(f"{base}/workflows?type=message_generation")
        await shot(page, "workflows")
        await page.goto(f"{base}/costs?since=1d&by=model")
        assert "gpt" in await page.content()
        await shot(page, "costs")
    finally:
        await runner.cleanup()


async def test_replay_a_dead_letter_and_watch_it_complete_viewer_refused(
    browser: Any, make_settings: Factory, azure_fake: FakeLLM, store: Store
) -> None:
    settings = await make_settings(console_tokens=TOKENS)  # no Azure: forced ones dead-letter
    env = envelope(
        {
            "type": "message_generation",
            "userId": "u-dlq",
            "forceProvider": "azure",
            "data": {"context": "hi"},
        }
    )
    await send_bodies(settings, [env])
    await drain(settings)
    ident = str(env.workflow_id)
    runner, base = await serve(settings)
    try:
        viewer = await sign_in(browser, base, VIEWER)
        await viewer.goto(f"{base}/dlq")
        assert ident in await viewer.content()
        assert await viewer.query_selector("text=Preview replay") is None
        status = await viewer.evaluate(
            "() => fetch('/dlq/replay', {method: 'POST', body: new URLSearchParams("
            "{all: '1', csrf: document.querySelector('input[name=csrf]').value})})"
            ".then(r => r.status)"
        )
        assert status == 403

        page = await sign_in(browser, base, OPERATOR)
        await page.goto(f"{base}/dlq")
        await shot(page, "dead-letters")
        await page.check(f"tr:has(a[href='/workflows/{ident}']) input[name=id]")
        await page.click("text=Preview replay of selected")
        assert "1 message(s) would be replayed" in await page.content()
        await shot(page, "replay-preview")
        await page.click("text=Replay 1 now")
        assert "Replayed 1 message(s)" in await page.content()
        await page.click(f"a[href='/workflows/{ident}']")
        assert await page.text_content("[data-status]") == "failed"

        fixed = await make_settings(
            create=False,
            queue_name=settings.queue_name,
            azure_openai_endpoint=azure_fake.endpoint,
            azure_openai_api_key=API_KEY,
            azure_openai_deployment="gpt-4o",
        )

        async def completed() -> bool:
            row = await store.workflow(ident)
            return row is not None and row["status"] == "completed"

        await run_until(fixed, completed, within=60)
        await page.reload()
        assert await page.text_content("[data-status]") == "completed"
        await page.goto(f"{base}/dlq")
        assert "otto" in await page.content() and "replay" in await page.content()
        audit = await query(store,
            "SELECT actor, role, count FROM console_audit WHERE action = 'replay'"
            " AND detail->'workflows' ? %s",
            (ident,),
        )
        assert audit == [{"actor": "otto", "role": "operator", "count": 1}]
    finally:
        await runner.cleanup()


def test_the_skip_line_names_the_missing_piece() -> None:
    nowhere = f"/nonexistent/{uuid.uuid4().hex}/chromium"
    why = _missing(nowhere)
    assert why is not None and (nowhere in why or "playwright" in why)
