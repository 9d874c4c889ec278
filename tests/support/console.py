"""The web console under aiohttp's test client: tokens and signing in through the form."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

VIEWER = "viewer-token-0123456789abcdef"
OPERATOR = "operator-token-0123456789abcdef"
TOKENS = f"vera:viewer:{VIEWER},otto:operator:{OPERATOR}"


async def login_nonce(client: TestClient[Any, Any]) -> str:
    """Open the sign-in form; return its double-submit value."""
    form = await client.get("/login")
    nonce = re.search(r'name="csrf" value="([^"]+)"', await form.text())
    assert nonce is not None
    return nonce.group(1)


async def sign_in(client: TestClient[Any, Any], token: str) -> str:
    """Sign in through the form; return the session's CSRF token."""
    nonce = await login_nonce(client)
    done = await client.post("/login", data={"csrf": nonce, "token": token})
    assert done.status == 200 and done.url.path == "/", await done.text()
    csrf = re.search(r'name="csrf" value="([^"]+)"', await done.text())
    assert csrf is not None
    return csrf.group(1)
