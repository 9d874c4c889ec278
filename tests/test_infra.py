"""Deployment artefacts, checked here rather than trusted.

The queue template is deployed into the local emulator's CloudFormation and
the fleet runs against the queues it made; the Kubernetes manifests and the
Dockerfile are parsed and held to the app's real endpoints and settings.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml
from cfnlint.decode.cfn_yaml import load as load_cfn

from tests.support import Factory, dlq_messages, drain, envelope, send_bodies
from worker.aws import aws_client
from worker.config import Settings
from worker.observability import HealthServer, Metrics
from worker.store import Store

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"


async def deploy(endpoint: str, name: str, template: Path, params: dict[str, str]) -> dict:
    body = await asyncio.to_thread(template.read_text)
    async with aws_client("cloudformation", endpoint, "us-east-1") as cfn:
        await cfn.create_stack(
            StackName=name,
            TemplateBody=body,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        )
        for _ in range(120):
            stack = (await cfn.describe_stacks(StackName=name))["Stacks"][0]
            if not stack["StackStatus"].endswith("IN_PROGRESS"):
                break
            await asyncio.sleep(0.5)
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


async def test_queue_template_deploys_and_the_fleet_runs_on_it(
    sqs_endpoint: str, make_settings: Factory, store: Store
) -> None:
    prefix = f"cfn{uuid.uuid4().hex[:8]}"
    outputs = await deploy(
        sqs_endpoint,
        f"{prefix}-queues",
        INFRA / "cloudformation" / "queues.yaml",
        {
            "Environment": "dev",
            "QueuePrefix": prefix,
            "MaxReceiveCount": "2",
            "VisibilityTimeout": "5",
        },
    )
    assert outputs["WorkQueueName"] == f"{prefix}-dev-work"
    settings: Settings = await make_settings(
        create=False,  # the template's queues, redrive policy included, as deployed
        queue_name=outputs["WorkQueueName"],
        priority_queue_name=outputs["PriorityQueueName"],
    )
    ok = envelope({"type": "message_generation", "userId": "cfn", "data": {"context": "hi"}})
    poison = envelope(
        {
            "type": "content_validation",
            "userId": "cfn",
            "data": {"content": f"[[fake:transient:{uuid.uuid4().hex}:99]]"},
        }
    )
    await send_bodies(settings, [ok, poison])
    stats = await drain(settings)
    assert stats.outcomes == {"completed": 1, "retried": 1, "dead_lettered": 1}
    moved = await dlq_messages(settings)
    assert len(moved) == 1 and str(poison.workflow_id) in moved[0].body
    row = await store.workflow(str(poison.workflow_id))
    assert row is not None and row["status"] == "failed"


async def test_queue_template_makes_a_fifo_fleet(sqs_endpoint: str, make_settings: Factory) -> None:
    prefix = f"cfn{uuid.uuid4().hex[:8]}"
    outputs = await deploy(
        sqs_endpoint,
        f"{prefix}-queues",
        INFRA / "cloudformation" / "queues.yaml",
        {
            "Environment": "dev",
            "QueuePrefix": prefix,
            "QueueKind": "fifo",
            "VisibilityTimeout": "5",
        },
    )
    assert outputs["WorkQueueName"] == f"{prefix}-dev-work.fifo"
    settings: Settings = await make_settings(
        create=False,
        queue_name=outputs["WorkQueueName"],
        priority_queue_name=outputs["PriorityQueueName"],
    )
    assert settings.dead_letter_queue_name == f"{prefix}-dev-work-dlq.fifo"  # as deployed
    async with aws_client("sqs", sqs_endpoint, "us-east-1") as sqs:
        made = await sqs.get_queue_attributes(
            QueueUrl=outputs["WorkQueueUrl"], AttributeNames=["All"]
        )
    attrs = made["Attributes"]
    assert (attrs["FifoQueue"], attrs["ContentBasedDeduplication"]) == ("true", "false")
    assert (attrs["DeduplicationScope"], attrs["FifoThroughputLimit"]) == (
        "messageGroup",
        "perMessageGroupId",
    )
    ok = envelope({"type": "message_generation", "userId": "cfn", "data": {"context": "hi"}})
    await send_bodies(settings, [ok])
    assert (await drain(settings)).outcomes == {"completed": 1}


def k8s(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((INFRA / "k8s" / name).read_text()) if doc]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container["env"]}


async def test_kubernetes_manifests_match_the_app() -> None:
    deployment = k8s("deployment.yaml")[0]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = env_of(container)
    grace = float(env["FLEET_SHUTDOWN_GRACE"])
    assert pod["terminationGracePeriodSeconds"] >= grace + 10
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["resources"]["limits"] and container["resources"]["requests"]
    secrets = [e for e in container["env"] if "valueFrom" in e]
    assert {e["name"] for e in secrets} >= {"DATABASE_URL", "OPENAI_API_KEY"}
    assert not any("KEY" in e["name"] and "value" in e for e in container["env"])
    port = int(env["FLEET_HEALTH_PORT"])
    assert container["ports"][0]["containerPort"] == port
    probes = {
        container["livenessProbe"]["httpGet"]["path"]: 200,
        container["readinessProbe"]["httpGet"]["path"]: 200,
    }
    assert set(probes) == {"/healthz", "/readyz"}

    async def fine() -> tuple[bool, str]:
        return True, "ok"

    server = HealthServer(0, live=fine, ready=fine, metrics=Metrics(), host="127.0.0.1")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            for path, status in probes.items():
                assert (await client.get(path)).status_code == status, path
            assert (await client.get("/nope")).status_code == 404
    finally:
        await server.stop()

    scaled = k8s("scaledobject.yaml")[0]
    triggers = scaled["spec"]["triggers"]
    assert {t["type"] for t in triggers} == {"aws-sqs-queue"}
    fleet_template = load_cfn(str(INFRA / "cloudformation" / "fleet.yaml"))
    target = fleet_template["Parameters"]["BacklogPerTaskTarget"]["Default"]
    assert all(int(t["metadata"]["queueLength"]) == int(target) for t in triggers)
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]


def test_ecs_and_docker_stop_and_health_settings_fit_the_fleet() -> None:
    template = load_cfn(str(INFRA / "cloudformation" / "fleet.yaml"))
    container = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    grace_max = template["Parameters"]["ShutdownGraceSeconds"]["MaxValue"]
    assert container["StopTimeout"] > grace_max
    assert container["HealthCheck"]["Command"] == ["CMD", "fleet", "check"]
    role = template["Resources"]["TaskRole"]["Properties"]["Policies"]
    metrics_policy = next(p for p in role if p["PolicyName"] == "fleet-metrics")
    statement = metrics_policy["PolicyDocument"]["Statement"][0]
    assert statement["Action"] == "cloudwatch:PutMetricData" and "Condition" in statement
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^STOPSIGNAL SIGTERM$", dockerfile, re.M)
    assert re.search(r'^HEALTHCHECK .*CMD \["fleet", "check"\]$', dockerfile, re.M)
    assert re.search(r"^USER 10001", dockerfile, re.M)
    assert re.search(r'^ENTRYPOINT \["fleet"\]$', dockerfile, re.M)
