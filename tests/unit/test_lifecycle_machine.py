"""The lifecycle state machine, executed by moto's Step Functions interpreter (no emulator).

The definition file runs as deployed (placeholders filled as CloudFormation fills them). Its
Lambda tasks run the real ``functions/lifecycle`` handler in this process against moto's SSM
and S3 and an in-memory registry; the Train task's message is answered by a stand-in for the
training worker that reads the task token from moto's SQS, as the real worker does. moto's
interpreter is LocalStack's, copied, and gets the emulator's fix for answers that come before
the task's heartbeat is set up (``evpm_localstack.sfn_callbacks``).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

from evpm.pins import PINS_PARAMETER, parse_pins
from evpm_localstack.sfn_callbacks import take_early_answers
from infra.config import REPO_ROOT
from tests.unit.conftest import FakeLambdaContext, load_function
from tests.unit.registry_fake import FakeRegistry

ASL = REPO_ROOT / "state_machines" / "model-lifecycle.asl.json"
REGION = "us-east-1"
ACCOUNT = "123456789012"
LIFECYCLE_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:evpm-lifecycle"
BUCKET = "artifacts-bucket"
NAMES = {"anomaly": "ev-anomaly", "classifier": "ev-classifier", "rul": "ev-rul"}

GOOD = {
    "anomaly": {"pr_auc": 0.7, "prevalence": 0.01, "roc_auc": 0.95},
    "classifier": {"macro_f1": 0.8, "baseline_macro_f1": 0.12, "accuracy": 0.9},
    "rul": {"rmse": 40.0, "baseline_rmse": 200.0, "rmse_ratio_to_baseline": 0.2},
}
BAD = {  # what a model trained on permuted labels scores
    "anomaly": {"pr_auc": 0.012, "prevalence": 0.01, "roc_auc": 0.5},
    "classifier": {"macro_f1": 0.13, "baseline_macro_f1": 0.12, "accuracy": 0.7},
    "rul": {"rmse": 210.0, "baseline_rmse": 200.0, "rmse_ratio_to_baseline": 1.05},
}


def definition(queue_url: str) -> str:
    values = {"TrainingQueueUrl": queue_url, "LifecycleFunctionArn": LIFECYCLE_ARN}
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m[1]], ASL.read_text())


def train_output(
    request: dict[str, Any], metrics: dict[str, dict[str, float]], champions: dict[str, int]
) -> dict[str, Any]:
    """What the training worker answers: per model its evidence and where it was logged."""
    models = []
    for task in request["models"]:
        models.append(
            {
                "evidence": {
                    "name": NAMES[task],
                    "task": task,
                    "metrics": metrics[task],
                    "champion_version": champions.get(NAMES[task]),
                    "champion_metrics": GOOD[task] if NAMES[task] in champions else None,
                    "latency_ms_p99": 0.4,
                    "artifact_bytes": 300_000,
                    "canary": {"finite": True, "min": 0.0, "max": 5.0, "proba_sum_error": 0.0},
                },
                "source": f"s3://mlflow-bucket/mlflow/1/models/m-{task}/artifacts",
                "run_id": f"run-{task}",
            }
        )
    profile = {
        "rows": 1000,
        "missing": {"SoC": 0.0},
        "out_of_range": {},
        "class_counts": {"none": 700, "brake_wear": 300},
    }
    return {
        "data": "s3://raw/fleet.parquet",
        "fingerprint": "abc",
        "data_profile": profile,
        "models": models,
    }


class World:
    """moto services, the registry, the lifecycle handler and the training stand-in."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.registry = FakeRegistry()
        self.train: Callable[[dict[str, Any]], dict[str, Any]] = lambda r: train_output(
            r, GOOD, self.champions()
        )
        self.serving_lag = 0  # canary calls that still answer with the old pins
        self.canary_calls = 0
        self.answer_gap = 0.0  # seconds the Train task waits between its message and heartbeat
        self.early_answers = 0  # answers that came in that gap
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.ssm = boto3.client("ssm", region_name=REGION)
        self.s3 = boto3.client("s3", region_name=REGION)
        self.s3.create_bucket(Bucket=BUCKET)
        self.ssm.put_parameter(Name=PINS_PARAMETER, Value="{}", Type="String")
        self.queue_url = self.sqs.create_queue(QueueName="evpm-training-requests")["QueueUrl"]
        for key, value in {
            "ARTIFACTS_BUCKET": BUCKET,
            "PINS_PARAMETER": PINS_PARAMETER,
            "MLFLOW_URI_PARAMETER": "/evpm/mlflow/tracking-uri",
            "API_FUNCTION": "evpm-api",
            "SCORER_FUNCTION": "evpm-scorer",
            "SMOKE_TIMEOUT_SECONDS": "5",
            "POWERTOOLS_TRACE_DISABLED": "1",
        }.items():
            monkeypatch.setenv(key, value)
        self.app = load_function("lifecycle")
        steps_module = load_function("lifecycle", "steps")
        self.app._steps = steps_module.Steps(
            self.app.settings,
            ssm=self.ssm,
            s3=self.s3,
            lam=boto3.client("lambda", region_name=REGION),
        )
        self.app._steps._registry = self.registry
        world = self

        def invoke(
            backend: Any,
            function_name: str,
            qualifier: Any,
            body: Any,
            headers: Any,
            response_headers: Any,
        ) -> bytes:
            return world.invoke(function_name, json.loads(body or "{}"), response_headers)

        monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
        setup_heartbeat = CallbackEndpoint.setup_heartbeat_endpoint

        def setup_after_gap(endpoint: CallbackEndpoint, heartbeat_seconds: int) -> Any:
            time.sleep(world.answer_gap)
            world.early_answers += endpoint.get_outcome() is not None
            return setup_heartbeat(endpoint, heartbeat_seconds)

        # both restored after the test, so moto's class is left as it was
        monkeypatch.setattr(CallbackEndpoint, "setup_heartbeat_endpoint", setup_after_gap)
        monkeypatch.setattr(CallbackEndpoint, "_evpm_takes_early_answers", False, raising=False)
        take_early_answers(CallbackEndpoint)
        self.arn = self.sfn.create_state_machine(
            name="evpm-model-lifecycle",
            definition=definition(self.queue_url),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn",
        )["stateMachineArn"]

    def champions(self) -> dict[str, int]:
        return {n: a["champion"] for n, a in self.registry.alias_map.items() if "champion" in a}

    def pins(self) -> dict[str, int]:
        return parse_pins(self.ssm.get_parameter(Name=PINS_PARAMETER)["Parameter"]["Value"])

    def invoke(
        self, function_name: str, event: dict[str, Any], response_headers: dict[str, str]
    ) -> bytes:
        name = function_name.rsplit(":", 1)[-1]
        if name == "evpm-lifecycle":
            try:
                return json.dumps(
                    self.app.handler(event, FakeLambdaContext(function_name=name))
                ).encode()
            except Exception as exc:
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps(
                    {"errorType": type(exc).__name__, "errorMessage": str(exc)}
                ).encode()
        # evpm-api / evpm-scorer canary: answer with the pins they have loaded.
        self.canary_calls += 1
        served = self.pins() if self.canary_calls > self.serving_lag else {}
        versions = {"health": "rules-v1", **{k: str(v) for k, v in served.items()}}
        records = event["evpm_canary"]["records"]
        predictions = [
            {"rul_hours": 12.0, "failure_probabilities": {"none": 0.9, "brake_wear": 0.1}}
            for _ in records
        ]
        return json.dumps({"model_versions": versions, "predictions": predictions}).encode()

    def worker(self, stop: threading.Event) -> None:
        """The training worker: take the task, answer with the evidence (or the failure)."""
        while not stop.is_set():
            got = self.sqs.receive_message(QueueUrl=self.queue_url, WaitTimeSeconds=0)
            for msg in got.get("Messages", []):
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=msg["ReceiptHandle"])
                body = json.loads(msg["Body"])
                try:
                    output = self.train(body["request"])
                except Exception as exc:
                    self.sfn.send_task_failure(
                        taskToken=body["taskToken"], error="TrainingFailed", cause=str(exc)
                    )
                else:
                    self.sfn.send_task_success(
                        taskToken=body["taskToken"], output=json.dumps(output)
                    )
            time.sleep(0.02)

    def run(self, payload: dict[str, Any], timeout: float = 180) -> dict[str, Any]:
        stop = threading.Event()
        thread = threading.Thread(target=self.worker, args=(stop,), daemon=True)
        thread.start()
        try:
            arn = self.sfn.start_execution(
                stateMachineArn=self.arn, name=uuid.uuid4().hex, input=json.dumps(payload)
            )["executionArn"]
            # generous: moto runs every state in threads, slow on a busy 2-core machine
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                result = self.sfn.describe_execution(executionArn=arn)
                if result["status"] != "RUNNING":
                    result["states"] = self.visited(arn)
                    return result
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join()
        states = self.visited(arn)
        raise AssertionError(f"execution did not finish in {timeout} s; states: {states}")

    def visited(self, arn: str) -> list[str]:
        events = self.sfn.get_execution_history(executionArn=arn)["events"]
        return [
            e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
        ]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(
        config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    ):
        yield World(monkeypatch)


ALL = ["anomaly", "classifier", "rul"]


def test_first_run_registers_promotes_and_pins_version_1(world: World) -> None:
    result = world.run({"trigger": "manual", "models": ALL})
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert result["states"][-4:] == ["Register", "Promote", "SmokeTest", "Promoted"]
    assert world.pins() == {"ev-anomaly": 1, "ev-classifier": 1, "ev-rul": 1}
    assert world.champions() == {"ev-anomaly": 1, "ev-classifier": 1, "ev-rul": 1}
    output = json.loads(result["output"])
    assert output["gate"]["passed"] is True
    assert output["smoke"]["expected"] == {"ev-anomaly": "1", "ev-classifier": "1", "ev-rul": "1"}
    # The gate's report is stored with the version and in S3.
    tags = world.registry.version("ev-rul", 1)["tags"]
    assert tags["gate_passed"] == "true" and "vs_champion" in tags["gate_report"]
    key = output["gate"]["report_uri"].split("/", 3)[3]
    assert json.loads(world.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())["passed"] is True


def test_an_answer_that_comes_before_the_heartbeat_is_set_up_is_taken(world: World) -> None:
    """The stand-in worker answers while the Train task sits between sending its message and
    setting up its heartbeat. Without the fix the task waited out ``HeartbeatSeconds`` (300 s)
    and failed with ``States.HeartbeatTimeout``; CI once hit this gap on a busy machine."""
    world.answer_gap = 1.0  # the worker polls every 20 ms: its answer lands in the gap
    result = world.run({"trigger": "manual", "models": ["rul"]}, timeout=60)
    assert world.early_answers == 1
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert world.pins() == {"ev-rul": 1}


def test_better_challenger_is_promoted_and_the_old_champion_becomes_previous(world: World) -> None:
    assert world.run({"trigger": "manual", "models": ALL})["status"] == "SUCCEEDED"
    world.serving_lag = 3  # serving picks up the new pins a little later: the smoke test waits
    result = world.run({"trigger": "ci", "models": ["rul"]})
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert world.pins() == {"ev-anomaly": 1, "ev-classifier": 1, "ev-rul": 2}
    assert world.registry.aliases("ev-rul") == {"champion": 2, "previous": 1}


def test_corrupted_challenger_is_rejected_and_nothing_moves(world: World) -> None:
    assert world.run({"trigger": "manual", "models": ALL})["status"] == "SUCCEEDED"
    pins, aliases = world.pins(), {n: world.registry.aliases(n) for n in NAMES.values()}
    world.train = lambda r: train_output(r, BAD, world.champions())
    result = world.run(
        {
            "trigger": "ci",
            "models": ALL,
            "options": {"corrupt_labels": True, "force_smoke_failure": False},
        }
    )
    assert result["status"] == "FAILED"
    assert result["error"] == "GateRejected"
    assert "ev-rul vs_champion" in result["cause"] and "ev-classifier floor" in result["cause"]
    assert "Register" not in result["states"]
    assert world.pins() == pins
    assert {n: world.registry.aliases(n) for n in NAMES.values()} == aliases
    assert len(world.registry.versions("ev-rul")) == 1  # nothing registered


def test_smoke_failure_rolls_back_pins_and_aliases_and_fails(world: World) -> None:
    assert world.run({"trigger": "manual", "models": ALL})["status"] == "SUCCEEDED"
    pins, aliases = world.pins(), {n: world.registry.aliases(n) for n in NAMES.values()}
    result = world.run(
        {
            "trigger": "ci",
            "models": ALL,
            "options": {"corrupt_labels": False, "force_smoke_failure": True},
        }
    )
    assert result["status"] == "FAILED"
    assert result["error"] == "SmokeTestFailed"
    assert "force_smoke_failure" in result["cause"]
    assert result["states"][-2:] == ["Rollback", "RolledBack"]
    assert world.pins() == pins
    assert {n: world.registry.aliases(n) for n in NAMES.values()} == aliases


def test_serving_that_never_picks_up_the_pins_fails_the_smoke_test(world: World) -> None:
    world.serving_lag = 10**6
    result = world.run({"trigger": "manual", "models": ["rul"]})
    assert result["status"] == "FAILED" and result["error"] == "SmokeTestFailed"
    assert "want {'ev-rul': '1'}" in result["cause"]
    assert world.pins() == {} and world.champions() == {}


def test_training_failure_ends_failed_with_the_workers_cause(world: World) -> None:
    def fail(_request: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("DataSpecError: column 'SoC' is missing")

    world.train = fail
    result = world.run({"trigger": "drift", "trigger_id": "drift-42", "models": ALL})
    assert result["status"] == "FAILED" and result["error"] == "TrainingFailed"
    assert result["states"][-2:] == ["Train", "TrainingFailed"]
    # moto drops SendTaskFailure's cause; the integration test checks it on the emulator.


@pytest.mark.parametrize(
    "payload", [{}, {"trigger": "ci"}, {"models": ["rul"]}, {"trigger": "ci", "models": []}]
)
def test_incomplete_request_fails_with_a_reason(world: World, payload: dict[str, Any]) -> None:
    result = world.run(payload)
    assert result["status"] == "FAILED"
    assert result["error"] == "InvalidLifecycleRequest"
    assert "models" in result["cause"]
