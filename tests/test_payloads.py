"""Bodies over the queue's limit as S3 pointers, in the format of AWS's SQS extended
client libraries: read from producers that use them, sent by the fleet, deleted once
settled; on LocalStack's S3."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aioboto3
import pytest
from botocore.exceptions import ClientError

from tests.support import Factory, dlq_messages, drain, env_for, fleet, queue_for
from worker.config import Settings
from worker.errors import MalformedMessage, PayloadUnavailable
from worker.ops.dlq import DlqWorkbench
from worker.producer import Producer
from worker.queue import Payloads, Pointer, pointer_of
from worker.queue.payloads import LEGACY_POINTER_CLASS, POINTER_CLASS, pointer_in
from worker.store import Store

SIZE = 400_000


def big_intent(user: str = "u-big") -> dict[str, Any]:
    """A 400 KB intent: a known context plus a large other key (bounded in the prompt)."""
    return {
        "type": "message_generation",
        "userId": user,
        "data": {"context": "hi, thanks for the subscription", "attachment": "x" * SIZE},
    }


@pytest.fixture
async def large(make_settings: Factory, sqs_endpoint: str) -> Settings:
    """Settings with a payload bucket of this test's own, created."""
    settings = await make_settings(
        payload_bucket=f"t-{uuid.uuid4().hex[:12]}", s3_endpoint_url=sqs_endpoint
    )
    async with Payloads(
        settings.payload_bucket, endpoint=settings.s3_endpoint_url, region=settings.aws_region
    ) as payloads:
        assert await payloads.ensure_bucket(create=True) == "created"
        assert await payloads.ensure_bucket(create=True) == "exists"
    return settings


@pytest.fixture
async def raw(sqs_endpoint: str) -> AsyncIterator[tuple[Any, Any]]:
    """Plain aioboto3 S3 and SQS clients, as another producer has them."""
    session = aioboto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    async with (
        session.client("s3", endpoint_url=sqs_endpoint) as s3,
        session.client("sqs", endpoint_url=sqs_endpoint) as sqs,
    ):
        yield s3, sqs


async def keys(s3: Any, bucket: str) -> list[str]:
    listed = await s3.list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listed.get("Contents", [])]


async def extended_send(
    s3: Any, sqs: Any, settings: Settings, body: str, *, legacy: bool = False
) -> str:
    """What the extended client libraries do: put the object, send pointer + size."""
    key = str(uuid.uuid4())
    await s3.put_object(Bucket=settings.payload_bucket, Key=key, Body=body.encode())
    url = (await sqs.get_queue_url(QueueName=settings.queue_name))["QueueUrl"]
    pointer = [
        LEGACY_POINTER_CLASS if legacy else POINTER_CLASS,
        {"s3BucketName": settings.payload_bucket, "s3Key": key},
    ]
    size = "SQSLargePayloadSize" if legacy else "ExtendedPayloadSize"
    await sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(pointer),
        MessageAttributes={size: {"DataType": "Number", "StringValue": str(len(body.encode()))}},
    )
    return key


def test_pointer_bodies_are_recognized() -> None:
    body = Pointer("b", "k").body()
    assert json.loads(body) == [POINTER_CLASS, {"s3BucketName": "b", "s3Key": "k"}]
    assert pointer_of(body) == Pointer("b", "k")
    legacy = json.dumps([LEGACY_POINTER_CLASS, {"s3BucketName": "b", "s3Key": "k"}])
    assert pointer_of(legacy) == Pointer("b", "k")
    for other in ('{"type": "x"}', "[1, 2]", '["a", {"s3Key": "k"}]', "[", "not json"):
        assert pointer_of(other) is None and pointer_in(other) is None
    sns = json.dumps({"Type": "Notification", "MessageId": "m", "Message": body})
    assert pointer_of(sns) is None and pointer_in(sns) == Pointer("b", "k")
    with pytest.raises(MalformedMessage, match="s3BucketName"):
        pointer_of(json.dumps([POINTER_CLASS, {"s3Key": "k"}]))


async def test_unreachable_s3_is_retryable() -> None:
    async with Payloads("b", endpoint="http://127.0.0.1:9", region="us-east-1") as payloads:
        with pytest.raises(PayloadUnavailable, match="s3://b/k"):
            await payloads.fetch(Pointer("b", "k"))


async def test_extended_client_pointers_complete_and_their_objects_are_deleted(
    large: Settings, raw: tuple[Any, Any], store: Store
) -> None:
    s3, sqs = raw
    workflow = uuid.uuid4()
    envelope = {"version": 1, "workflowId": str(workflow), "intent": big_intent()}
    await extended_send(s3, sqs, large, json.dumps(envelope))
    await extended_send(s3, sqs, large, json.dumps(big_intent("u-legacy")), legacy=True)
    key = str(uuid.uuid4())  # the SNS extended client: the pointer is the notification's
    await s3.put_object(Bucket=large.payload_bucket, Key=key, Body=json.dumps(big_intent()))
    notification = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": "arn:aws:sns:us-east-1:000000000000:intents",
        "Message": Pointer(large.payload_bucket or "", key).body(),
    }
    async with queue_for(large) as queue:
        await queue.send(json.dumps(notification), {})
    assert len(await keys(s3, large.payload_bucket or "")) == 3
    stats = await drain(large)
    assert stats.outcomes == {"completed": 3}
    row = await store.workflow(str(workflow))
    assert row is not None and row["status"] == "completed"
    assert await keys(s3, large.payload_bucket or "") == []


async def test_the_fleets_producer_sends_a_large_intent_as_a_pointer(
    large: Settings, raw: tuple[Any, Any]
) -> None:
    s3, sqs = raw
    async with Producer(large) as producer:
        workflow = await producer.submit(big_intent())
        small = await producer.submit({"type": "content_planning", "userId": "u-small"})
    url = (await sqs.get_queue_url(QueueName=large.queue_name))["QueueUrl"]
    seen = await sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, MessageAttributeNames=["All"]
    )
    bodies = {m["Body"][:1]: m for m in seen["Messages"]}
    assert set(bodies) == {"[", "{"}  # the large one as a pointer, the small one as it is
    pointer = pointer_of(bodies["["]["Body"])
    assert pointer is not None and pointer.bucket == large.payload_bucket
    stored = await s3.get_object(Bucket=pointer.bucket, Key=pointer.key)
    text = (await stored["Body"].read()).decode()
    assert json.loads(text)["workflowId"] == workflow and len(text) > SIZE
    size = bodies["["]["MessageAttributes"]["ExtendedPayloadSize"]
    assert size == {"DataType": "Number", "StringValue": str(len(text.encode()))}
    async with Producer(large) as producer:
        stats = await drain(large)
        done = await producer.result(workflow, timeout=5)
        assert (await producer.result(small, timeout=5)).status == "completed"
    assert stats.outcomes == {"completed": 2} and done.status == "completed"
    assert await keys(s3, pointer.bucket) == []


async def test_a_pointer_to_a_missing_object_is_dead_lettered_naming_the_key(
    large: Settings,
) -> None:
    key = f"gone-{uuid.uuid4()}"
    async with queue_for(large) as queue:
        await queue.send(Pointer(large.payload_bucket or "", key).body(), {})
    stats = await drain(large)
    assert stats.outcomes == {"malformed": 1}
    [moved] = await dlq_messages(large)
    assert moved.attributes["errorCode"] == "payload_missing"
    assert key in moved.attributes["errorMessage"]
    assert pointer_of(moved.body) == Pointer(large.payload_bucket or "", key)


async def test_a_dead_letter_keeps_its_object_until_the_dlq_purge(
    large: Settings, raw: tuple[Any, Any], store: Store
) -> None:
    s3, sqs = raw
    bad = {"type": "no_such_type", "userId": "u", "data": {"x": "y" * SIZE}}
    key = await extended_send(s3, sqs, large, json.dumps(bad))
    stats = await drain(large)
    assert stats.outcomes == {"malformed": 1}
    assert await keys(s3, large.payload_bucket or "") == [key]  # the DLQ copy points at it
    async with queue_for(large) as queue:
        bench = DlqWorkbench(queue, store)
        entries = await bench.scan(hold_seconds=30)
        assert [e.error_code for e in entries] == ["unknown_intent"]
        assert await bench.purge(entries) == 1
    assert await keys(s3, large.payload_bucket or "") == []


async def test_enqueue_sizes_a_body_that_can_travel_as_a_pointer(
    large: Settings, raw: tuple[Any, Any], tmp_path: Path
) -> None:
    s3, _ = raw
    path = tmp_path / "big.json"
    path.write_text(json.dumps(big_intent()))
    args = ["enqueue", "--intent", f"@{path}", "--output", "json"]
    without = env_for(large)
    without.pop("FLEET_PAYLOAD_BUCKET")
    refused = fleet([*args, "--dry-run"], without)
    assert refused.returncode == 1 and "FLEET_PAYLOAD_BUCKET" in refused.stderr
    checked = fleet([*args, "--dry-run"], env_for(large))
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["messageId"] is None
    assert await keys(s3, large.payload_bucket or "") == []  # a dry run puts nothing
    sent = fleet(args, env_for(large))
    assert sent.returncode == 0, sent.stderr
    assert len(await keys(s3, large.payload_bucket or "")) == 1
    stats = await drain(large)
    assert stats.outcomes == {"completed": 1}
    assert await keys(s3, large.payload_bucket or "") == []


async def test_queues_create_makes_the_payload_bucket(
    make_settings: Factory, raw: tuple[Any, Any], sqs_endpoint: str
) -> None:
    s3, _ = raw
    settings = await make_settings(
        create=False, payload_bucket=f"t-{uuid.uuid4().hex[:12]}", s3_endpoint_url=sqs_endpoint
    )
    made = fleet(["queues", "create"], env_for(settings))
    assert made.returncode == 0, made.stderr
    assert f"payload_bucket: {settings.payload_bucket} (created)" in made.stdout
    await s3.head_bucket(Bucket=settings.payload_bucket)
    with pytest.raises(ClientError):
        await s3.head_bucket(Bucket=f"t-{uuid.uuid4().hex[:12]}")
