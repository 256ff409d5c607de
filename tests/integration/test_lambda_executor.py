"""The host-process executor on failure paths: timeouts and init errors in AWS's shape."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import System

FIXTURES = Path(__file__).parent / "fixtures" / "functions"
ROLE = "arn:aws:iam::000000000000:role/evpm-test-function"


def _zip(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for file in folder.rglob("*.py"):
            archive.write(file, file.relative_to(folder))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def functions(system: System):
    lam = system.client("lambda")
    names = {}
    for fixture, timeout in (("sleepy", 2), ("bad_import", 5), ("echo", 5)):
        name = f"evpm-test-{fixture.replace('_', '-')}-{uuid.uuid4().hex[:6]}"
        lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE,
                            Handler="app.handler", Code={"ZipFile": _zip(FIXTURES / fixture)},
                            Timeout=timeout, MemorySize=256,
                            Environment={"Variables": {"EVPM_TEST_VAR": "seen"}})
        names[fixture] = name
    for name in names.values():
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
    yield names
    for name in names.values():
        lam.delete_function(FunctionName=name)


def _invoke(system: System, name: str, payload: dict) -> tuple[dict, str | None, float]:
    started = time.perf_counter()
    response = system.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload))
    body = json.loads(response["Payload"].read())
    return body, response.get("FunctionError"), time.perf_counter() - started


def test_timeout_returns_aws_error_and_kills_worker(system: System, functions) -> None:
    body, error, seconds = _invoke(system, functions["sleepy"], {"seconds": 30})
    assert error == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 2.00 seconds" in body["errorMessage"]
    assert seconds < 10
    # The environment is reset, not wedged: a short sleep now succeeds.
    body, error, _ = _invoke(system, functions["sleepy"], {"seconds": 0.1})
    assert error is None and body == {"woke": True}


def test_import_failure_returns_init_error(system: System, functions) -> None:
    body, error, seconds = _invoke(system, functions["bad_import"], {})
    assert error == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert "Unable to import module 'app'" in body["errorMessage"]
    assert "evpm_module_that_does_not_exist" in body["errorMessage"]
    assert seconds < 10


def test_emulator_stays_responsive_and_functions_are_isolated(system: System, functions) -> None:
    for _ in range(2):
        _invoke(system, functions["sleepy"], {"seconds": 5})
        _invoke(system, functions["bad_import"], {})
    assert httpx.get(f"{system.endpoint}/_localstack/health", timeout=5).status_code == 200
    body, error, _ = _invoke(system, functions["echo"], {"hello": 1})
    assert error is None
    assert body["event"] == {"hello": 1}
    assert body["python"].startswith("3.12.")
    assert body["sees_boto3"] and not body["sees_localstack"]
    assert body["memory_mb"] == 256 and 0 < body["remaining_ms"] <= 5000
    assert body["env_var"] == "seen"


def test_timeout_is_logged_to_cloudwatch(system: System, functions) -> None:
    logs = system.client("logs")
    group = f"/aws/lambda/{functions['sleepy']}"
    deadline = time.monotonic() + 15
    messages: list[str] = []
    while time.monotonic() < deadline:
        streams = logs.describe_log_streams(logGroupName=group).get("logStreams", [])
        messages = [event["message"] for s in streams for event in logs.get_log_events(
            logGroupName=group, logStreamName=s["logStreamName"])["events"]]
        if any("Task timed out" in m for m in messages):
            break
        time.sleep(1)
    assert any("Task timed out after 2.00 seconds" in m for m in messages)
    assert any(m.startswith("REPORT RequestId:") for m in messages)
