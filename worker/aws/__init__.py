"""aiobotocore clients and the translation of botocore errors into ours.

The only package that imports botocore: SQS (``worker.queue``) and CloudWatch
(``worker.observability.cloudwatch``) call AWS through these two functions, except
the worker's hot path (receive, delete, visibility), which ``worker.aws.wire``
sends as signed JSON POSTs over aiohttp (decision 60).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError

from worker.errors import ConfigError, QueueUnavailable

__all__ = ["aws_call", "aws_client", "error_code"]

R = TypeVar("R")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _credentials(endpoint: str | None) -> dict[str, str]:
    """Local emulators accept any key; spare operators from inventing one."""
    if _is_loopback(endpoint) and not os.environ.get("AWS_ACCESS_KEY_ID"):
        return {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    return {}


@contextlib.asynccontextmanager
async def aws_client(
    service: str, endpoint: str | None, region: str, *, pool: int = 50
) -> AsyncIterator[Any]:
    """An aiobotocore client with a connection pool sized for its callers."""
    session = aioboto3.Session()
    config = AioConfig(
        max_pool_connections=pool,
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=5,
        read_timeout=30,
        parameter_validation=False,  # our calls are typed; botocore's check was ~5 % of CPU
    )
    async with session.client(
        service, endpoint_url=endpoint, region_name=region, config=config, **_credentials(endpoint)
    ) as client:
        if _is_loopback(endpoint):
            client.meta.events.register("before-sign", _keep_alive)
        _fixed_user_agent(client)
        yield client


def _fixed_user_agent(client: Any) -> None:
    """botocore rebuilds the User-Agent string twice per call (a few percent of the
    worker's CPU); it only changes with features this client does not switch per call,
    so build it once."""
    creator = getattr(client, "_user_agent_creator", None)
    if creator is None or not callable(getattr(creator, "to_string", None)):
        return
    text = creator.to_string()
    creator.to_string = lambda: text


def _is_loopback(endpoint: str | None) -> bool:
    return bool(endpoint) and urlparse(endpoint).hostname in _LOOPBACK


def _keep_alive(request: Any, **_: Any) -> None:
    """LocalStack behind hypercorn closes every connection unless the client asks to keep
    it: a new TCP connection per call was a tenth of the worker's CPU, and the server's."""
    request.headers["Connection"] = "keep-alive"


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


async def aws_call(what: str, call: Callable[[], Awaitable[R]]) -> R:
    """Run one AWS call; its errors become ConfigError (no such queue) or QueueUnavailable."""
    try:
        return await call()
    except ClientError as exc:
        code = error_code(exc)
        if "NonExistentQueue" in code or "QueueDoesNotExist" in code:
            raise ConfigError(f"{what}: queue does not exist (run `fleet queues create`)") from exc
        raise QueueUnavailable(f"{what} failed: {code or exc}", code=code or "aws") from exc
    except (BotoCoreError, OSError) as exc:
        raise QueueUnavailable(f"{what} failed: {type(exc).__name__}: {exc}") from exc
