"""SQS's JSON protocol over aiohttp, for the calls a busy worker makes most.

ReceiveMessage, DeleteMessageBatch and ChangeMessageVisibilityBatch are nearly all
of a worker's AWS calls. Through aiobotocore each one runs the event hooks, the
endpoint rules, the request model, the signer and the parser: a quarter of the
worker's CPU at 1,200 msg/s (py-spy; docs/performance.md, decision 60). Here each
is one POST of a JSON body, as SQS's JSON protocol defines it:

* the endpoint and the credentials are the aiobotocore client's own (the same
  resolution chain; refreshable credentials refresh as botocore refreshes them);
  ``sigv4.Signer`` signs, as botocore's ``SigV4Auth`` would;
* the reply is the JSON document botocore would have turned into the same dict;
* connection errors, timeouts, 429/500/502/503/504 and throttling codes are tried
  three times in all with botocore's standard backoff (without its retry quota);
  a failed credential refresh is ``QueueUnavailable`` too; errors become ours by one table
  (``classify``): a queue that does not exist is a ``ConfigError``, the rest
  ``QueueUnavailable``.

Everything else (sends, queue attributes, operator calls) stays on aiobotocore.
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
import json
import os
import random
import ssl
from typing import Any

import aiohttp
import certifi

from worker import codec
from worker.aws.sigv4 import Signer
from worker.config.proxies import proxy_for
from worker.errors import ConfigError, QueueUnavailable

__all__ = ["ATTEMPTS", "SqsWire", "classify"]

ATTEMPTS = 3  # in all, as botocore's standard retry mode
CONTENT_TYPE = "application/x-amz-json-1.0"
READ_TIMEOUT = 30.0  # seconds; a long poll waits at most 20
THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "InternalError",
        "InternalFailure",
    }
)
NO_QUEUE = ("NonExistentQueue", "QueueDoesNotExist")
TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


class _Transient(Exception):
    """A failure worth another attempt (what botocore's standard mode retries)."""


def classify(status: int, code: str) -> type[Exception]:
    """What an error reply is: ``ConfigError`` (no such queue), ``_Transient`` (try
    again) or ``QueueUnavailable`` (give up: the caller's own retry decides)."""
    if any(name in code for name in NO_QUEUE):
        return ConfigError
    if status in TRANSIENT_STATUS or code in THROTTLED:
        return _Transient
    return QueueUnavailable


def error_code(headers: Any, body: bytes) -> tuple[str, str]:
    """The error's code and message: SQS names the query-protocol code (the one
    botocore reports) in ``x-amzn-query-error``; the JSON ``__type`` otherwise."""
    code = str(headers.get("x-amzn-query-error", "")).split(";")[0]
    message = ""
    try:
        doc = json.loads(body) if body else {}
    except ValueError:
        doc = {}
    if isinstance(doc, dict):
        code = code or str(doc.get("__type", "")).rpartition("#")[2].split(":")[0]
        message = str(doc.get("message") or doc.get("Message") or "")
    return code, message


class SqsWire:
    """``async with SqsWire(client, pool=n) as wire``; ``await wire.call(action, params)``."""

    def __init__(self, client: Any, *, pool: int) -> None:
        self._url = str(client.meta.endpoint_url)
        self._signer = Signer(self._url, "sqs", str(client.meta.region_name))
        # the client's own credentials object (botocore keeps it on its request signer)
        self._credentials = client._get_credentials()
        self._pool = pool
        self._proxy = proxy_for(self._url)  # as botocore would (HTTPS_PROXY, NO_PROXY)
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SqsWire:
        # sock_connect, not connect: waiting for a free pooled connection is not a failure
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=READ_TIMEOUT)
        # botocore's CA bundle: AWS_CA_BUNDLE (a TLS-inspecting proxy's), else certifi's
        tls = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or certifi.where())
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._pool, ssl=tls), timeout=timeout
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        """One SQS action; its reply as a dict. Raises ``ConfigError`` or
        ``QueueUnavailable`` (after ``ATTEMPTS`` tries of a transient failure)."""
        body = codec.dumps(params)
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self._post(action, body)
            except _Transient as exc:
                failure = str(exc)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                failure = f"{type(exc).__name__}: {exc}"
            if attempt < ATTEMPTS:  # botocore's standard backoff: rand · 2^(n-1), cap 20 s
                await asyncio.sleep(random.random() * min(20.0, 2.0 ** (attempt - 1)))
        raise QueueUnavailable(f"{action} failed: {failure}", code="aws")

    async def _post(self, action: str, body: bytes) -> dict[str, Any]:
        if self._http is None:
            raise RuntimeError("SqsWire used outside `async with`")
        headers = await self._signed(action, body)
        post = self._http.post(self._url, data=body, headers=headers, proxy=self._proxy)
        async with post as reply:
            raw = await reply.read()
            if reply.status == 200:
                doc = codec.loads(raw) if raw else {}
                return doc if isinstance(doc, dict) else {}
            code, message = error_code(reply.headers, raw)
        kind = classify(reply.status, code)
        if kind is ConfigError:
            raise ConfigError(f"{action}: queue does not exist (run `fleet queues create`)")
        if kind is _Transient:
            raise _Transient(f"{code or reply.status}: {message}")
        raise QueueUnavailable(f"{action} failed: {code or reply.status}", code=code or "aws")

    async def _signed(self, action: str, body: bytes) -> dict[str, str]:
        if self._credentials is None:
            raise ConfigError("no AWS credentials found (AWS_ACCESS_KEY_ID, a profile or a role)")
        try:  # a refresh (STS, a container role) may fail: retryable, like the call
            frozen = self._credentials.get_frozen_credentials()
            if inspect.isawaitable(frozen):
                frozen = await frozen
        except Exception as exc:
            raise QueueUnavailable(
                f"{action}: AWS credentials could not be refreshed: {type(exc).__name__}",
                code="credentials",
            ) from exc
        now = datetime.datetime.now(datetime.UTC)
        headers = {
            "content-type": CONTENT_TYPE,
            "x-amz-target": f"AmazonSQS.{action}",
            "x-amzn-query-mode": "true",  # as botocore: errors name their query-protocol code
        }
        signed = self._signer.headers(frozen, body, headers, now)
        signed["Connection"] = "keep-alive"  # LocalStack closes the connection otherwise
        return signed
