"""The lifecycle ASL behaves as its state names say, run by moto's ASL interpreter (no emulator)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.config import REPO_ROOT

ASL = REPO_ROOT / "state_machines" / "model-lifecycle.asl.json"
SUBSTITUTIONS = {"ArtifactsBucket": "artifacts-bucket", "MlflowBucket": "mlflow-bucket"}


def definition() -> str:
    """The file with its placeholders filled the way CloudFormation fills them."""
    return re.sub(r"\$\{(\w+)\}", lambda m: SUBSTITUTIONS[m[1]], ASL.read_text())


def run(payload: dict[str, Any]) -> dict[str, Any]:
    """Start one execution and wait for it to finish; return describe_execution."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        arn = sfn.create_state_machine(
            name="lifecycle",
            definition=definition(),
            roleArn="arn:aws:iam::123456789012:role/sfn",
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            result = sfn.describe_execution(executionArn=execution["executionArn"])
            if result["status"] != "RUNNING":
                return result
            time.sleep(0.05)
    raise AssertionError("execution did not finish")


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def test_valid_request_is_recorded_with_artifact_locations() -> None:
    # GIVEN a drift-triggered request for one model
    result = run({"trigger": "drift", "models": ["ev-anomaly"]})
    # THEN it succeeds, keeps the request and says nothing was trained
    assert result["status"] == "SUCCEEDED"
    output = json.loads(result["output"])
    assert output["request"]["models"] == ["ev-anomaly"]
    assert output["request"]["trigger"] == "drift"
    assert output["request"]["artifacts_bucket"] == "artifacts-bucket"
    assert output["request"]["mlflow_bucket"] == "mlflow-bucket"
    assert output["outcome"]["status"] == "recorded"


@pytest.mark.parametrize(
    "payload",
    [{}, {"trigger": "ci"}, {"models": ["ev-rul"]}, {"trigger": "ci", "models": []}],
)
def test_incomplete_request_fails_with_a_reason(payload: dict[str, Any]) -> None:
    result = run(payload)
    assert result["status"] == "FAILED"
    assert result.get("error") == "InvalidLifecycleRequest"
    assert "models" in result.get("cause", "")
