"""A local HTTP fake of OpenAI's chat-completions API.

It answers ``POST /chat/completions`` (and ``/v1/chat/completions``) in the
OpenAI wire format, in a thread of its own so worker subprocesses can use it.
JSON-mode requests get an object generated from the JSON Schema the handler
put in its system prompt. Faults are injected by markers in the prompt, so a
test or the demo can script one workflow's fate without any shared state:

    [[fake:reject]]                  400 invalid_request_error (permanent)
    [[fake:auth]]                    401 (permanent)
    [[fake:transient:KEY:N]]         503 for the first N requests carrying KEY
    [[fake:rate_limit:KEY:N]]        429 with Retry-After: 0, first N requests
    [[fake:bad_output:KEY:N]]        output that fails the schema, first N requests
    [[fake:slow:MS]]                 add MS milliseconds of latency
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections import Counter
from typing import Any

from aiohttp import web

from worker.providers.tokens import estimate_messages, estimate_text

__all__ = ["FakeOpenAI", "example_from_schema"]

_MARKER = re.compile(r"\[\[fake:([a-z_]+)(?::([^:\]]+))?(?::(\d+))?\]\]")
_SCHEMA = re.compile(r"JSON Schema:\n(\{.*\})\s*$", re.DOTALL)


def example_from_schema(schema: dict[str, Any], defs: dict[str, Any] | None = None) -> Any:
    """A small instance that satisfies ``schema`` (the subset pydantic emits)."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return example_from_schema(defs[schema["$ref"].split("/")[-1]], defs)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return example_from_schema(options[0], defs)
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and schema.get("type") != "object":
        return schema["default"]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: example_from_schema(sub, defs) for name, sub in props.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        return [example_from_schema(schema.get("items", {}), defs) for _ in range(count)]
    if kind == "integer":
        return int(schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1))
    if kind == "number":
        low = float(schema.get("minimum", 0.0))
        high = float(schema.get("maximum", low + 1.0))
        return round((low + high) / 2, 3)
    if kind == "boolean":
        return True
    return "sample " + str(schema.get("title", "text")).lower()


class FakeOpenAI:
    """``with FakeOpenAI() as fake: fake.base_url`` — a chat-completions server."""

    def __init__(self, *, latency_ms: float = 0.0, api_key: str | None = None) -> None:
        self.latency_ms = latency_ms
        self.api_key = api_key
        self.base_url = ""
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # --- lifecycle -------------------------------------------------------
    def start(self) -> FakeOpenAI:
        self._thread = threading.Thread(target=self._serve, name="fake-openai", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake OpenAI server did not start")
        return self

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application()
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_post("/v1/chat/completions", self._chat)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        port = runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self._runner = runner
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- behaviour -------------------------------------------------------
    def _count(self, key: str) -> int:
        with self._lock:
            self._seen[key] += 1
            return self._seen[key]

    async def _chat(self, request: web.Request) -> web.Response:
        with self._lock:
            self.requests += 1
        reply = await self._answer(request)
        with self._lock:
            self.statuses[reply.status] += 1
        return reply

    async def _answer(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or (self.api_key and auth != f"Bearer {self.api_key}"):
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        try:
            body = await request.json()
            messages = body["messages"]
            model = str(body["model"])
            text = "\n".join(str(m.get("content", "")) for m in messages)
        except (ValueError, KeyError, TypeError, AttributeError):
            return _error(400, "invalid_request_error", "Could not parse the JSON body.")
        delay = self.latency_ms
        markers = _MARKER.findall(text)
        for kind, key, _count in markers:
            if kind == "slow":
                delay += float(key or 0)
        if delay:
            await asyncio.sleep(delay / 1000)
        bad_output = False
        for kind, key, count in markers:
            limit = int(count or 1)
            if kind == "reject":
                return _error(400, "invalid_prompt", "The prompt was rejected by the fake.")
            if kind == "auth":
                return _error(401, "invalid_api_key", "Incorrect API key provided.")
            if kind == "transient" and self._count(f"t:{key}") <= limit:
                return _error(503, "server_is_overloaded", "The server is overloaded.")
            if kind == "rate_limit" and self._count(f"r:{key}") <= limit:
                return _error(
                    429, "rate_limit_exceeded", "Rate limit reached.", {"retry-after": "0"}
                )
            if kind == "bad_output" and self._count(f"b:{key}") <= limit:
                bad_output = True
        json_mode = (body.get("response_format") or {}).get("type") in (
            "json_object",
            "json_schema",
        )
        content = self._content(messages, json_mode, bad_output)
        usage = {
            "prompt_tokens": estimate_messages(messages),
            "completion_tokens": estimate_text(content),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return web.json_response(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": usage,
                "system_fingerprint": "fp_fake",
            }
        )

    @staticmethod
    def _content(messages: list[dict[str, Any]], json_mode: bool, bad_output: bool) -> str:
        if bad_output:
            return '{"unexpected": true}' if json_mode else ""
        if json_mode:
            system = next((str(m["content"]) for m in messages if m.get("role") == "system"), "")
            found = _SCHEMA.search(system)
            if found is None:
                return json.dumps({"answer": "ok"})
            return json.dumps(example_from_schema(json.loads(found.group(1))))
        last = str(messages[-1].get("content", ""))
        try:
            data = json.loads(last)
        except ValueError:
            data = {}
        name = (
            data.get("fanName") or data.get("recipientId") or "there"
            if isinstance(data, dict)
            else "there"
        )
        return f"Hey {name}! Thanks for being here. I made something just for you - want a peek?"


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    kind = {
        400: "invalid_request_error",
        401: "authentication_error",
        429: "requests",
        503: "server_error",
    }.get(status, "server_error")
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status=status,
        headers=headers,
    )
