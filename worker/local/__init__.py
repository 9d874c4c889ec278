"""The local stack for the demo, the tests and the benchmark.

LocalStack on the host (SQS, CloudWatch, CloudFormation), PostgreSQL from a
URL or an embedded server, and HTTP fakes of the providers. Nothing in the
runtime imports this package.
"""

from worker.local.fake_gateway import FakeGateway, GatewayConfig
from worker.local.fake_llm import FakeConfig, FakeLLM, Latency
from worker.local.fault_proxy import FaultProxy
from worker.local.localstack import LocalStack, find_localstack_python
from worker.local.postgres import EmbeddedPostgres, scratch_database

__all__ = [
    "EmbeddedPostgres",
    "FakeConfig",
    "FakeGateway",
    "FakeLLM",
    "FaultProxy",
    "GatewayConfig",
    "Latency",
    "LocalStack",
    "find_localstack_python",
    "scratch_database",
]
