"""The model lifecycle on the emulator: what `evpm up` trained serves; a corrupted challenger
is refused; a good one is promoted and served within 30 s; rollback by hand and by a failed
smoke test. Everything runs for real: the Step Functions execution on the emulator, the
training worker, MLflow, SSM pins, the API through API Gateway and the scorer on Kinesis.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from evpm.telemetry import EXAMPLE_RECORD
from tests.integration.conftest import EVPM, REPO, System

NAMES = ("ev-anomaly", "ev-classifier", "ev-rul")


def run_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [*EVPM, *args],
        cwd=REPO,
        text=True,
        capture_output=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


def api(
    system: System, method: str, path: str, body: Any = None, role: str = "ml-admin"
) -> httpx.Response:
    return httpx.request(
        method,
        f"{system.api_url.rstrip('/')}{path}",
        json=body,
        headers={"x-api-key": system.keys[role]},
        timeout=60,
    )


def predict_versions(system: System) -> dict[str, str]:
    response = api(system, "POST", "/predict", EXAMPLE_RECORD, role="fleet-service")
    assert response.status_code == 200, response.text
    return response.json()["model_versions"]


def within(seconds: float, check: Callable[[], bool]) -> float:
    """Poll ``check`` until true; return how long it took (fails after ``seconds``)."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > seconds:
            pytest.fail(f"not true within {seconds} s")
        time.sleep(1)
    return time.monotonic() - t0


def lifecycle(*args: str) -> dict[str, Any]:
    done = run_cli("lifecycle", "run", "--json", *args)
    start = done.stdout.find("{")
    assert start >= 0, f"no JSON outcome\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout[start:])


def stream_versions(system: System, vehicle: str) -> dict[str, str] | None:
    record = {**EXAMPLE_RECORD, "vehicle_id": vehicle}
    system.client("kinesis").put_record(
        StreamName=system.stream, Data=json.dumps(record).encode(), PartitionKey=vehicle
    )
    table = system.client("dynamodb")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        items = table.query(
            TableName=system.table,
            KeyConditionExpression="vehicle_id = :v",
            ExpressionAttributeValues={":v": {"S": vehicle}},
        )["Items"]
        if items:
            return {k: v["S"] for k, v in items[0]["model_versions"]["M"].items()}
        time.sleep(0.5)
    return None


def test_make_up_serves_version_1_of_the_three_trained_models(system: System) -> None:
    body = api(system, "GET", "/models", role="viewer").json()
    assert body["pins"] == {"ev-anomaly": 1, "ev-classifier": 1, "ev-rul": 1}
    for model in body["registry"]:
        assert model["aliases"]["champion"] == 1
        [v1] = model["versions"]
        assert v1["gate_passed"] == "true" and v1["metrics"] and v1["source"].startswith("s3://")
    versions = predict_versions(system)
    assert {k: versions[k] for k in NAMES} == {
        "ev-anomaly": "1",
        "ev-classifier": "1",
        "ev-rul": "1",
    }
    prediction = api(system, "POST", "/predict", EXAMPLE_RECORD, role="fleet-service").json()
    assert prediction["rul_hours"] >= 0 and prediction["predicted_failure"]
    assert abs(sum(prediction["failure_probabilities"].values()) - 1) < 1e-9
    assert stream_versions(system, "EV-LC-UP-1") == versions


def test_corrupted_challenger_is_rejected_and_nothing_moves(system: System) -> None:
    before = api(system, "GET", "/models").json()
    outcome = lifecycle(
        "--model", "rul", "--model", "classifier", "--corrupt-labels", "--trigger", "ci"
    )
    assert outcome["status"] == "FAILED"
    assert outcome["error"] == "GateRejected"
    assert "ev-rul" in outcome["cause"] and "ev-classifier" in outcome["cause"]
    assert "Register" not in outcome["states"]
    after = api(system, "GET", "/models").json()
    assert after["pins"] == before["pins"]
    assert [m["aliases"] for m in after["registry"]] == [m["aliases"] for m in before["registry"]]


def test_good_challenger_is_promoted_and_served_then_rolled_back_by_hand(system: System) -> None:
    outcome = lifecycle("--model", "rul", "--trigger", "ci")
    assert outcome["status"] == "SUCCEEDED", outcome
    assert outcome["states"][-3:] == ["Promote", "SmokeTest", "Promoted"]
    promoted_at = time.monotonic()
    [new] = {v for k, v in outcome["promotion"]["after"]["pins"].items() if k == "ev-rul"}
    assert new == 2
    # Serving names the new version within 30 s of the promotion (the smoke test already
    # waited for both functions; this checks it through API Gateway and the stream).
    within(30 - (time.monotonic() - promoted_at), lambda: predict_versions(system)["ev-rul"] == "2")
    assert stream_versions(system, "EV-LC-PROMOTED-1")["ev-rul"] == "2"
    aliases = {m["name"]: m["aliases"] for m in api(system, "GET", "/models").json()["registry"]}
    assert aliases["ev-rul"] == {"champion": 2, "previous": 1}

    done = run_cli("rollback", "ev-rul")
    assert done.returncode == 0, done.stderr
    took = within(30, lambda: predict_versions(system)["ev-rul"] == "1")
    print(f"\n[measure] rollback served through API Gateway after {took:.1f} s")
    body = api(system, "GET", "/models").json()
    assert body["pins"]["ev-rul"] == 1
    assert {m["name"]: m["aliases"] for m in body["registry"]}["ev-rul"] == {
        "champion": 1,
        "previous": 2,
    }


def test_failed_smoke_test_rolls_back_by_itself(system: System) -> None:
    before = api(system, "GET", "/models").json()
    outcome = lifecycle("--model", "rul", "--force-smoke-failure")
    assert outcome["status"] == "FAILED"
    assert outcome["error"] == "SmokeTestFailed"
    assert outcome["states"][-3:] == ["SmokeTest", "Rollback", "RolledBack"]
    after = api(system, "GET", "/models").json()
    assert after["pins"] == before["pins"]
    before_aliases = {m["name"]: m["aliases"] for m in before["registry"]}
    assert {m["name"]: m["aliases"] for m in after["registry"]} == before_aliases
    history = run_cli("lifecycle", "history", "--json")
    runs = json.loads(history.stdout)
    assert runs[0]["status"] == "FAILED" and runs[0]["error"] == "SmokeTestFailed"
