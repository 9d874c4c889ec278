"""Bodies over the queue's limit, as S3 pointers in the format of AWS's SQS extended
client libraries (Java ``amazon-sqs-java-extended-client-lib``, Python
``amazon-sqs-python-extended-client-lib``, and the SNS ones): producers using those
libraries work unchanged, and the fleet sends that way too.

On the wire the SQS body is a JSON array, and one message attribute says the size::

    ["software.amazon.payloadoffloading.PayloadS3Pointer",
     {"s3BucketName": "my-bucket", "s3Key": "3f0c…"}]
    ExtendedPayloadSize (Number) = bytes of the object   (legacy: SQSLargePayloadSize)

The legacy pointer class ``com.amazon.sqs.javamessaging.MessageS3Pointer`` is read too.
Those libraries also rewrite the receipt handle (bucket and key between markers) so
their ``delete_message`` can find the object; the fleet does not need that: it keeps
the SQS receipt handle as it is and deletes the object itself once the workflow is
settled (``Payloads.discard``; docs/decisions.md says when).

The only place that talks to S3: botocore errors become ours here, by one table
(``_translate``): an object or bucket that does not exist is a ``MalformedMessage``
naming the key; anything else is ``PayloadUnavailable`` (retryable).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from worker.aws import aws_client, error_code
from worker.contract import Envelope, encode_envelope
from worker.errors import (
    ConfigError,
    EnqueueRefused,
    MalformedMessage,
    PayloadUnavailable,
    WorkerError,
)
from worker.queue.messages import Attributes, Received

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "POINTER_CLASS",
    "SIZE_ATTRIBUTE",
    "Payloads",
    "Pointer",
    "encode_body",
    "pointer_in",
    "pointer_of",
]

POINTER_CLASS = "software.amazon.payloadoffloading.PayloadS3Pointer"
LEGACY_POINTER_CLASS = "com.amazon.sqs.javamessaging.MessageS3Pointer"
SIZE_ATTRIBUTE = "ExtendedPayloadSize"
LEGACY_SIZE_ATTRIBUTE = "SQSLargePayloadSize"
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024  # a body the fleet reads into memory: 16 MiB at most
log = structlog.get_logger("worker.queue")
_MISSING = {"NoSuchKey", "NoSuchBucket", "404", "NotFound"}


@dataclass(frozen=True, slots=True)
class Pointer:
    """Where a body lives in S3."""

    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def body(self) -> str:
        """The SQS body the extended client libraries write for this object."""
        return json.dumps([POINTER_CLASS, {"s3BucketName": self.bucket, "s3Key": self.key}])


def pointer_of(body: str) -> Pointer | None:
    """The S3 pointer this body is, or None for any other body. A body that names a
    pointer class without a bucket and key is malformed."""
    if not body.lstrip().startswith("["):
        return None
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not (isinstance(decoded, list) and decoded and decoded[0] in _CLASSES):
        return None
    where = decoded[1] if len(decoded) == 2 else None
    bucket = where.get("s3BucketName") if isinstance(where, dict) else None
    key = where.get("s3Key") if isinstance(where, dict) else None
    if not (isinstance(bucket, str) and bucket and isinstance(key, str) and key):
        raise MalformedMessage(
            "S3 pointer body without s3BucketName and s3Key", code="payload_pointer"
        )
    return Pointer(bucket, key)


_CLASSES = (POINTER_CLASS, LEGACY_POINTER_CLASS)
POINTER_CLASS_MARK = "S3Pointer"  # in both class names: a cheap test before parsing


def pointer_in(body: str) -> Pointer | None:
    """The S3 pointer a body is, or carries as an SNS notification's ``Message``."""
    pointer = pointer_of(body)
    if pointer is not None or POINTER_CLASS_MARK not in body:
        return pointer
    try:
        wrapper = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not (isinstance(wrapper, dict) and wrapper.get("Type") == "Notification"):
        return None
    inner = wrapper.get("Message")
    return pointer_of(inner) if isinstance(inner, str) else None


def encode_body(envelope: Envelope, max_message_bytes: int, *, bucket: str | None) -> str:
    """The envelope's wire body, refused (``EnqueueRefused``) over what may be sent: the
    queue's limit or, with a payload bucket (``FLEET_PAYLOAD_BUCKET``), what may travel
    as an S3 pointer (``MAX_PAYLOAD_BYTES``)."""
    if bucket:
        return encode_envelope(
            envelope,
            MAX_PAYLOAD_BYTES,
            limit="the limit of a body sent as an S3 pointer",
            hint="(FLEET_PAYLOAD_BUCKET)",
        )
    return encode_envelope(envelope, max_message_bytes)


def _translate(exc: Exception, what: str, pointer: Pointer) -> WorkerError:
    """The one table from botocore's errors to ours at the S3 boundary."""
    code = error_code(exc)
    if code in _MISSING:
        return MalformedMessage(
            f"S3 payload {pointer.url} does not exist ({code}): deleted, expired, or never written",
            code="payload_missing",
        )
    detail = code or f"{type(exc).__name__}: {exc}"
    return PayloadUnavailable(f"{what} {pointer.url} failed: {detail}")


class Payloads:
    """The S3 side of the queue: ``async with Payloads(...)``. ``bucket`` is where the
    fleet puts bodies over the limit (None: it refuses them, as without this)."""

    def __init__(
        self, bucket: str | None, *, endpoint: str | None, region: str, pool: int = 10
    ) -> None:
        self.bucket = bucket
        self._endpoint = endpoint
        self._region = region
        self._pool = pool
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    async def open(self) -> None:
        stack = contextlib.AsyncExitStack()
        self._client = await stack.enter_async_context(
            aws_client("s3", self._endpoint, self._region, pool=self._pool)
        )
        self._stack = stack

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    async def __aenter__(self) -> Payloads:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def ensure_bucket(self, *, create: bool) -> str:
        """The payload bucket exists ("exists"), or is made when ``create`` ("created");
        else ``ConfigError`` naming the setting (in AWS the bucket comes from the
        CloudFormation template, with its lifecycle rule and permissions)."""
        if not self.bucket:
            raise ConfigError("FLEET_PAYLOAD_BUCKET is not set: no payload bucket to create")
        where = Pointer(self.bucket, "")
        try:
            await self._client.head_bucket(Bucket=self.bucket)
            return "exists"
        except (ClientError, BotoCoreError, OSError) as exc:
            if error_code(exc) not in _MISSING:
                raise _translate(exc, "HeadBucket", where) from exc
        if not create:
            raise ConfigError(
                f"FLEET_PAYLOAD_BUCKET {self.bucket!r} does not exist: deploy it with "
                "infra/cloudformation/queues.yaml"
            )
        extra = (
            {}
            if self._region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": self._region}}
        )
        try:
            await self._client.create_bucket(Bucket=self.bucket, **extra)
        except (ClientError, BotoCoreError, OSError) as exc:
            raise _translate(exc, "CreateBucket", where) from exc
        return "created"

    async def resolve(self, body: str) -> str | None:
        """The body with its S3 payload in place, or None when it points at nothing: a
        pointer body becomes the object; an SNS notification (raw delivery off) whose
        ``Message`` is a pointer (the SNS extended client) gets the object as ``Message``."""
        pointer = pointer_in(body)
        if pointer is None:
            return None
        payload = await self.fetch(pointer)
        if pointer_of(body) is not None:
            return payload
        return json.dumps({**json.loads(body), "Message": payload})

    async def fetch(self, pointer: Pointer) -> str:
        """The body an S3 pointer stands for."""
        try:
            reply = await self._client.get_object(Bucket=pointer.bucket, Key=pointer.key)
            size = int(reply.get("ContentLength") or 0)
            async with reply["Body"] as stream:
                if size > MAX_PAYLOAD_BYTES:
                    raise MalformedMessage(
                        f"S3 payload {pointer.url} is {size} bytes, over {MAX_PAYLOAD_BYTES}",
                        code="too_large",
                    )
                data: bytes = await stream.read()
        except (ClientError, BotoCoreError, OSError) as exc:
            raise _translate(exc, "GetObject", pointer) from exc
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage(
                f"S3 payload {pointer.url} is not UTF-8 text", code="not_json"
            ) from exc

    async def place(self, body: str, attributes: Attributes, limit: int) -> tuple[str, Attributes]:
        """The body as it is when it fits ``limit`` (with its attributes, as SQS counts);
        else put in the payload bucket, and the pointer body with its size attribute."""
        size = len(body.encode())
        if size + _attributes_size(attributes) <= limit:
            return body, attributes
        if not self.bucket:
            raise EnqueueRefused(
                f"message body is {size} bytes, over the queue's limit of {limit} bytes "
                "(FLEET_MAX_MESSAGE_BYTES); set FLEET_PAYLOAD_BUCKET to send it as an "
                "S3 pointer",
                code="too_large",
            )
        pointer = Pointer(self.bucket, str(uuid.uuid4()))
        try:
            await self._client.put_object(
                Bucket=pointer.bucket, Key=pointer.key, Body=body.encode()
            )
        except (ClientError, BotoCoreError, OSError) as exc:
            raise _translate(exc, "PutObject", pointer) from exc
        sized = {**attributes, SIZE_ATTRIBUTE: {"DataType": "Number", "StringValue": str(size)}}
        return pointer.body(), sized

    async def discard(self, message: Received) -> bool:
        """Delete the object a message's body points at, if it is a pointer (True when
        deleted). A failure is logged, not raised: what is left is storage, not work
        (the bucket's lifecycle rule removes it; infra/cloudformation)."""
        try:
            pointer = pointer_in(message.body)
        except MalformedMessage:
            return False
        if pointer is None:
            return False
        try:
            await self._client.delete_object(Bucket=pointer.bucket, Key=pointer.key)
        except (ClientError, BotoCoreError, OSError) as exc:
            log.warning("payload_not_deleted", error=str(_translate(exc, "DeleteObject", pointer)))
            return False
        return True


def _attributes_size(attributes: Attributes) -> int:
    """Bytes SQS counts for message attributes: names, types and values."""
    return sum(
        len(name.encode()) + sum(len(str(v).encode()) for v in value.values())
        for name, value in attributes.items()
    )
