"""Drift closes the loop on the emulator: a changed fleet streams in, the scorer captures it, the
monitor finds the changed signal and says so on the alert bus, and the retraining trigger starts
exactly one lifecycle execution naming the event, which trains, gates and promotes; a second
event during that run is suppressed with its reason; one after the cool-down starts a run.

Runs last (see conftest): it promotes new versions, which earlier tests' expectations predate.
The suite deploys the stacks with the monitor's schedule off and a 60 s cool-down (Makefile
``TEST_ENV``), so only this test's monitor runs publish events.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import EVPM, REPO, System
from training_job.simulator import FleetConfig, simulate_fleet

COOLDOWN_SECONDS = float(os.environ.get("EVPM_RETRAIN_COOLDOWN_SECONDS", "60"))


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [*EVPM, *args],
        cwd=REPO,
        text=True,
        capture_output=True,
        timeout=timeout,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, f"evpm {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done


def drift_run(*args: str) -> dict[str, Any]:
    return json.loads(cli("drift", "run", "--json", *args).stdout)


def decision(event_id: str, seconds: float = 60) -> dict[str, Any]:
    """The retraining trigger's recorded decision on ``event_id`` (polled)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = json.loads(cli("drift", "triggers", "--json", "--limit", "100").stdout)
        for item in found:
            if item["event_id"] == event_id:
                return item
        time.sleep(2)
    pytest.fail(f"no decision recorded for event {event_id} within {seconds} s")


def drifted_fleet(path: Path, prefix: str) -> int:
    """300 vehicles' readings of one hour, their vibration sensors reading 2 mm/s high."""
    fleet = simulate_fleet(
        FleetConfig(vehicles=300, hours=2, seed=77, sensor_bias=(("Motor_Vibration", 2.0),))
    )
    hour = fleet[fleet["timestamp"] == fleet["timestamp"].max()]
    columns = [
        c
        for c in hour.columns
        if c not in ("failure_mode", "rul_hours", "is_anomaly", "anomaly_kind")
    ]
    with path.open("w") as out:
        for row in hour[columns].itertuples(index=False):
            record = dict(zip(columns, row, strict=True))
            record["vehicle_id"] = f"{prefix}-{record['vehicle_id']}"
            record["timestamp"] = record["timestamp"].strftime("%Y-%m-%dT%H:%M:%S.000000Z")
            out.write(json.dumps(record) + "\n")
    return len(hour)


def send_drifted(path: Path, prefix: str) -> tuple[str, dict[str, Any]]:
    """Stream a drifted hour through the scorer; wait until the served versions' capture holds
    it (judged without publishing). Returns the time the window starts at (just before the
    send: what earlier tests streamed stays out of it) and the quiet run's summary."""
    since = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
    sent = drifted_fleet(path, prefix)
    cli("send", "--file", str(path))
    deadline = time.monotonic() + 120
    while True:
        quiet = drift_run("--start", since, "--no-publish")
        if min((v["rows"] for v in quiet["verdicts"]), default=0) >= sent:
            return since, quiet
        assert time.monotonic() < deadline, quiet
        time.sleep(3)


def executions_of(system: System, event_id: str) -> list[dict[str, Any]]:
    sfn = system.client("stepfunctions")
    arn = system.info["stacks"]["StateMachineArn"]
    found = []
    for e in sfn.list_executions(stateMachineArn=arn, maxResults=100)["executions"]:
        body = json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"])
        if body.get("trigger_id") == event_id:
            found.append({**e, "input": body})
    return found


def wait_finished(system: System, arn: str, seconds: float = 900) -> str:
    sfn = system.client("stepfunctions")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = sfn.describe_execution(executionArn=arn)["status"]
        if status != "RUNNING":
            return status
        time.sleep(3)
    pytest.fail(f"{arn} still running after {seconds} s")


def test_drift_starts_one_retraining_that_promotes_then_suppresses_then_starts_again(
    system: System, tmp_path: Path
) -> None:
    # GIVEN a changed fleet streamed through the scorer (which captures what it stores)
    since, quiet = send_drifted(tmp_path / "drifted.jsonl", "DRIFT")
    assert quiet["events"] == {} and not quiet["missing_profiles"], quiet

    # WHEN the monitor runs THEN it names the biased sensor for every served model
    first = drift_run("--start", since)
    assert set(first["events"]) >= {"DriftDetected"}, first
    for verdict in first["verdicts"]:
        assert "Motor_Vibration" in verdict["drifted"], verdict
    event_id = first["events"]["DriftDetected"]

    # AND the trigger starts exactly one execution, whose input names the event
    started = decision(event_id)
    assert (started["action"], started["reason"]) == ("start", "started"), started
    runs = executions_of(system, event_id)
    assert len(runs) == 1 and runs[0]["executionArn"] == started["execution_arn"]
    assert runs[0]["input"]["trigger"] == "drift" and "Motor_Vibration" in runs[0]["input"]["cause"]

    # AND a second event while it runs starts nothing, recorded with the reason
    second = drift_run("--start", since)["events"]["DriftDetected"]
    suppressed = decision(second)
    assert (suppressed["action"], suppressed["reason"]) == ("suppressed", "running"), suppressed
    assert executions_of(system, second) == []

    # AND the run trains, passes the gate and promotes; the new versions name the event
    assert wait_finished(system, started["execution_arn"]) == "SUCCEEDED"
    registry = system.info["mlflow"]["url"].rstrip("/")
    for model in ("ev-anomaly", "ev-classifier", "ev-rul"):
        champion = httpx.get(
            f"{registry}/api/2.0/mlflow/registered-models/alias",
            params={"name": model, "alias": "champion"},
            timeout=30,
        ).json()["model_version"]
        tags = {t["key"]: t["value"] for t in champion.get("tags", [])}
        assert tags.get("trigger") == "drift" and tags.get("trigger_id") == event_id, (model, tags)
        assert tags.get("drift_profile") == "artifacts/drift_profile.json"

    # AND the drift reached Prometheus (through the metrics the exporter reads) and fires in
    # Alertmanager for the served models (it has had the lifecycle's run time to get there)
    alertmanager = system.info["monitoring"]["alertmanager"]["url"].rstrip("/")
    deadline = time.monotonic() + 240
    while True:
        firing = httpx.get(
            f"{alertmanager}/api/v2/alerts",
            params={"filter": 'alertname="EvpmDriftDetected"'},
            timeout=30,
        ).json()
        models = {a["labels"].get("model") for a in firing}
        if {"ev-anomaly", "ev-classifier", "ev-rul"} <= models:
            break
        assert time.monotonic() < deadline, f"EvpmDriftDetected not firing for all: {firing}"
        time.sleep(5)

    # AND after the cool-down, the fleet still drifted (now scored by the new versions: the
    # monitor judges each version on its own rows), another event starts another run
    elapsed = (datetime.now(UTC) - datetime.fromisoformat(started["decided_at"])).total_seconds()
    time.sleep(max(0.0, COOLDOWN_SECONDS - elapsed) + 2)
    since, _ = send_drifted(tmp_path / "drifted-again.jsonl", "DRIFT2")
    third = drift_run("--start", since)["events"]["DriftDetected"]
    again = decision(third)
    assert (again["action"], again["reason"]) == ("start", "started"), again
    system.client("stepfunctions").stop_execution(
        executionArn=again["execution_arn"], cause="test done"
    )
