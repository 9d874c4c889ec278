"""The dev stack: the local stack for the demo, the tests and the benchmark.

LocalStack on the host (SQS, CloudWatch, CloudFormation), PostgreSQL from a
URL or an embedded server, and HTTP fakes of the providers. Nothing in the
runtime imports this package.
"""

from devstack.fake_gateway import FakeGateway, GatewayConfig
from devstack.fake_llm import FakeConfig, FakeLLM, Latency
from devstack.fault_proxy import FaultProxy
from devstack.localstack import LocalStack, find_localstack_python
from devstack.postgres import EmbeddedPostgres, scratch_database

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
