"""The hot path's SQS client (``worker.aws.wire``): its signature is botocore's, its
errors are ours, transient failures are tried three times. (Against LocalStack it
carries every receive, delete and visibility change of the rest of the suite.)"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support import serving
from worker.aws.sigv4 import Signer, host_of
from worker.aws.wire import ATTEMPTS, SqsWire, _Transient, classify, error_code
from worker.batcher import Batcher
from worker.errors import ConfigError, QueueUnavailable
from worker.queue.client import QueueClient
from worker.queue.lanes import Lane

BODY = b'{"QueueUrl":"http://127.0.0.1:4566/000000000000/work","MaxNumberOfMessages":10}'


@pytest.mark.parametrize(
    ("url", "region", "token"),
    [
        ("http://127.0.0.1:4566", "us-east-1", None),
        ("https://sqs.eu-west-1.amazonaws.com", "eu-west-1", None),
        ("https://sqs.eu-west-1.amazonaws.com:443", "eu-west-1", "FQoGZXIvYXdzE//token+/="),
        ("http://LocalHost:80", "ap-south-1", "t"),
    ],
)
def test_the_signature_is_the_one_botocore_writes(url: str, region: str, token: str | None) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    frozen = credentials.get_frozen_credentials()
    headers = {
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": "AmazonSQS.X",
        "x-amzn-query-mode": "true",
    }
    theirs = AWSRequest(method="POST", url=url, data=BODY, headers=dict(headers))
    SigV4Auth(frozen, "sqs", region).add_auth(theirs)
    when = datetime.datetime.strptime(theirs.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    signer = Signer(url, "sqs", region)
    for _ in range(2):  # the second time with the cached key
        ours = signer.headers(frozen, BODY, dict(headers), when)
        assert ours["Authorization"] == theirs.headers["Authorization"]
    assert ours["x-amz-date"] == theirs.headers["X-Amz-Date"]
    assert ours.get("x-amz-security-token") == token


def test_a_new_day_or_a_new_secret_derives_a_new_key() -> None:
    signer = Signer("http://127.0.0.1:4566", "sqs", "us-east-1")
    one = Credentials("A", "s1").get_frozen_credentials()
    two = Credentials("A", "s2").get_frozen_credentials()
    day = datetime.datetime(2026, 12, 3, 23, 59, 59)
    first = signer.headers(one, BODY, {}, day)["Authorization"]
    assert signer.headers(two, BODY, {}, day)["Authorization"] != first
    later = signer.headers(one, BODY, {}, day + datetime.timedelta(seconds=2))["Authorization"]
    assert "/20261204/" in later and later != first


def test_host_is_lower_case_without_a_default_port() -> None:
    assert host_of("https://SQS.us-east-1.amazonaws.com:443/") == "sqs.us-east-1.amazonaws.com"
    assert host_of("http://127.0.0.1:4566") == "127.0.0.1:4566"
    assert host_of("http://[::1]:4566") == "[::1]:4566"


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (400, "AWS.SimpleQueueService.NonExistentQueue", ConfigError),
        (400, "QueueDoesNotExist", ConfigError),
        (400, "RequestThrottled", _Transient),
        (400, "ThrottlingException", _Transient),
        (429, "", _Transient),
        (500, "InternalError", _Transient),
        (503, "", _Transient),
        (501, "", QueueUnavailable),
        (403, "AccessDenied", QueueUnavailable),
        (400, "ReceiptHandleIsInvalid", QueueUnavailable),
    ],
)
def test_error_replies_are_classified_by_one_table(status: int, code: str, kind: type) -> None:
    assert classify(status, code) is kind


class FakeSqs:
    """Answers with the scripted (status, headers, body) replies, then 200 {}."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        self.seen: list[tuple[Any, dict[str, Any]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.headers.copy(), json.loads(await request.read())))
        status, headers, body = self.script.pop(0) if self.script else (200, {}, {"ok": 1})
        return web.json_response(body, status=status, headers=headers)


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeSqs, str]]:
    sqs = FakeSqs()
    async with serving({"/": sqs.handle}) as url:
        yield sqs, url


def client_for(url: str) -> Any:
    return SimpleNamespace(
        meta=SimpleNamespace(endpoint_url=url, region_name="us-east-1"),
        _get_credentials=lambda: Credentials("AKIDEXAMPLE", "secret-never-sent"),
    )


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("worker.aws.wire.random.random", lambda: 0.0)


async def test_a_call_is_a_signed_json_post(fake: tuple[FakeSqs, str]) -> None:
    sqs, url = fake
    async with SqsWire(client_for(url), pool=4) as wire:
        reply = await wire.call("DeleteMessageBatch", {"QueueUrl": "q", "Entries": []})
    assert reply == {"ok": 1}
    headers, body = sqs.seen[0]
    assert body == {"QueueUrl": "q", "Entries": []}
    assert headers["X-Amz-Target"] == "AmazonSQS.DeleteMessageBatch"
    assert headers["Content-Type"] == "application/x-amz-json-1.0"
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert headers["x-amzn-query-mode"] == "true"
    signed = headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert signed == ["content-type", "host", "x-amz-date", "x-amz-target", "x-amzn-query-mode"]
    assert "secret-never-sent" not in str(list(headers.items()))


async def test_transient_failures_are_tried_again_then_succeed(fake: tuple[FakeSqs, str]) -> None:
    sqs, url = fake
    sqs.script = [(500, {}, {}), (400, {"x-amzn-query-error": "RequestThrottled;Sender"}, {})]
    async with SqsWire(client_for(url), pool=4) as wire:
        assert await wire.call("ReceiveMessage", {}) == {"ok": 1}
    assert len(sqs.seen) == 3


async def test_three_transient_failures_make_the_queue_unavailable(
    fake: tuple[FakeSqs, str],
) -> None:
    sqs, url = fake
    sqs.script = [(503, {}, {"__type": "x#ServiceUnavailable", "message": "busy"})] * 5
    async with SqsWire(client_for(url), pool=4) as wire:
        with pytest.raises(QueueUnavailable, match="ReceiveMessage failed: ServiceUnavailable"):
            await wire.call("ReceiveMessage", {})
    assert len(sqs.seen) == ATTEMPTS


async def test_a_missing_queue_is_a_config_error_at_once(fake: tuple[FakeSqs, str]) -> None:
    sqs, url = fake
    missing = {"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"}
    sqs.script = [(400, missing, {"__type": "com.amazonaws.sqs#QueueDoesNotExist"})]
    async with SqsWire(client_for(url), pool=4) as wire:
        with pytest.raises(ConfigError, match="queue does not exist"):
            await wire.call("ReceiveMessage", {})
    assert len(sqs.seen) == 1


async def test_a_refusal_is_not_tried_again(fake: tuple[FakeSqs, str]) -> None:
    sqs, url = fake
    sqs.script = [(403, {}, {"__type": "com.amazonaws.sqs#AccessDenied", "message": "no"})]
    async with SqsWire(client_for(url), pool=4) as wire:
        with pytest.raises(QueueUnavailable, match="DeleteMessageBatch failed: AccessDenied"):
            await wire.call("DeleteMessageBatch", {})
    assert len(sqs.seen) == 1


async def test_no_server_makes_the_queue_unavailable() -> None:
    async with SqsWire(client_for("http://127.0.0.1:9"), pool=4) as wire:
        with pytest.raises(QueueUnavailable, match="ReceiveMessage failed: ClientConnectorError"):
            await wire.call("ReceiveMessage", {})


def test_the_error_code_is_the_query_code_else_the_json_type() -> None:
    query = {"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"}
    assert error_code(query, b"{}") == ("AWS.SimpleQueueService.NonExistentQueue", "")
    body = b'{"__type":"com.amazonaws.sqs#InvalidAddress:http://x","message":"bad"}'
    assert error_code({}, body) == ("InvalidAddress", "bad")
    assert error_code({}, b"<html>") == ("", "")


class Expired:
    async def get_frozen_credentials(self) -> Any:
        raise RuntimeError("credentials were refreshed, but the refreshed credentials are expired")


async def test_a_failed_credential_refresh_makes_the_queue_unavailable(
    fake: tuple[FakeSqs, str],
) -> None:
    sqs, url = fake
    client = client_for(url)
    client._get_credentials = Expired
    async with SqsWire(client, pool=4) as wire:
        with pytest.raises(QueueUnavailable, match="credentials could not be refreshed") as got:
            await wire.call("ReceiveMessage", {})
    assert got.value.code == "credentials"
    assert sqs.seen == []


class Recorder:
    def __init__(self) -> None:
        self.params: list[dict[str, Any]] = []

    async def call(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        self.params.append(params)
        return {}


async def test_a_fifo_receive_carries_an_attempt_id_a_retry_would_repeat() -> None:
    """A receive retried after a lost reply gets the same messages back (SQS keys them by
    ReceiveRequestAttemptId), instead of leaving a FIFO group hidden behind the first."""
    queue = QueueClient("work.fifo", "work-dlq.fifo", endpoint=None, region="us-east-1")
    wire = Recorder()
    queue._hot = wire  # type: ignore[assignment]
    noop = Batcher(lambda batch: asyncio.sleep(0, [None] * len(batch)))
    for name, queue_name in (("standard", "work.fifo"), ("priority", "work-priority")):
        url = f"http://q/{queue_name}"
        queue.lanes[name] = Lane(name, queue_name, url, url + "-dlq", 3, noop, noop)  # type: ignore[index]
    await queue.receive(10, 1)
    await queue.receive(10, 1)
    await queue.receive(10, 1, "priority")
    first, second, standard = wire.params
    assert len(first["ReceiveRequestAttemptId"]) == 32
    assert first["ReceiveRequestAttemptId"] != second["ReceiveRequestAttemptId"]
    assert "ReceiveRequestAttemptId" not in standard
