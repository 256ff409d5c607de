"""Retraining that starts itself: one run at a time, a cool-down, every decision recorded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from evpm.retrain import TriggerEvent, decide, lifecycle_input
from tests.unit.conftest import load_function

NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)
ARN = "arn:aws:states:us-east-1:000000000000:stateMachine:evpm-model-lifecycle"


def _event(
    i: str = "e-1", models=("ev-rul", "ev-classifier"), kind="DriftDetected"
) -> TriggerEvent:
    return TriggerEvent.model_validate(
        {
            "id": i,
            "detail-type": kind,
            "time": NOW.isoformat(),
            "source": "evpm.monitor",
            "detail": {"models": list(models), "signals": {m: ["Motor_Vibration"] for m in models}},
        }
    )


def test_the_rules_in_order() -> None:
    assert (
        decide(_event(models=("nope",)), running=[], cooldown_until=None, now=NOW).reason
        == "no_models"
    )
    assert decide(_event(), running=["manual-1"], cooldown_until=None, now=NOW).reason == "running"
    later = NOW + timedelta(hours=1)
    cooling = decide(_event(), running=[], cooldown_until=later, now=NOW)
    assert cooling.reason == "cooldown" and later.isoformat() in cooling.detail
    started = decide(_event(), running=[], cooldown_until=NOW - timedelta(seconds=1), now=NOW)
    assert started.action == "start" and "Motor_Vibration" in started.detail


def test_the_run_names_its_event_and_models() -> None:
    body = lifecycle_input(_event("evt-42"))
    assert body["trigger"] == "drift" and body["trigger_id"] == "evt-42"
    assert body["models"] == ["rul", "classifier"] and body["dataset"] == "fleet"
    # every option the state machine reads is there (it fails on a missing one)
    assert body["options"] == {"corrupt_labels": False, "force_smoke_failure": False}
    assert body["cause"].startswith("DriftDetected (ev-classifier: Motor_Vibration")


class FakeSfn:
    def __init__(self, running: list[str] | None = None, fail: bool = False) -> None:
        self.running, self.fail = running or [], fail
        self.started: list[dict[str, Any]] = []

    def list_executions(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["statusFilter"] == "RUNNING"
        return {"executions": [{"name": n} for n in self.running]}

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        if self.fail:
            raise ClientError(
                {"Error": {"Code": "ExecutionLimitExceeded", "Message": "x"}}, "StartExecution"
            )
        self.started.append(kwargs)
        self.running.append(kwargs["name"])
        return {"executionArn": f"{ARN}:{kwargs['name']}"}


@pytest.fixture
def retrain(aws_env, monkeypatch):
    with mock_aws():
        boto3.client("dynamodb").create_table(
            TableName="evpm-retrain-triggers",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        monkeypatch.setenv("STATE_MACHINE_ARN", ARN)
        monkeypatch.setenv("TRIGGERS_TABLE", "evpm-retrain-triggers")
        monkeypatch.setenv("COOLDOWN_SECONDS", "600")
        module = load_function("retrain")
        yield module, module.Triggers("evpm-retrain-triggers")


def test_exactly_one_run_then_suppressed_then_after_the_cooldown_another(retrain) -> None:
    module, triggers = retrain
    sfn = FakeSfn()
    first = module.trigger(_event("e-1"), triggers=triggers, sfn=sfn, now=NOW)
    assert first["action"] == "start" and len(sfn.started) == 1
    assert json.loads(sfn.started[0]["input"])["trigger_id"] == "e-1"
    # a second event while that run goes: suppressed, recorded with its reason
    second = module.trigger(
        _event("e-2"), triggers=triggers, sfn=sfn, now=NOW + timedelta(minutes=5)
    )
    assert (second["action"], second["reason"]) == ("suppressed", "running")
    # the run ended; still within the cool-down: suppressed
    sfn.running.clear()
    third = module.trigger(
        _event("e-3"), triggers=triggers, sfn=sfn, now=NOW + timedelta(minutes=9)
    )
    assert third["reason"] == "cooldown" and len(sfn.started) == 1
    # the same event delivered again: the recorded decision, nothing started
    again = module.trigger(
        _event("e-1"), triggers=triggers, sfn=sfn, now=NOW + timedelta(minutes=9)
    )
    assert again["execution_arn"] == first["execution_arn"] and len(sfn.started) == 1
    # after the cool-down: a new run
    fourth = module.trigger(
        _event("e-4"), triggers=triggers, sfn=sfn, now=NOW + timedelta(minutes=11)
    )
    assert fourth["action"] == "start" and len(sfn.started) == 2
    assert {i["id"] for i in triggers.table.scan()["Items"]} == {
        "cooldown",
        "event#e-1",
        "event#e-2",
        "event#e-3",
        "event#e-4",
    }


def test_two_events_at_once_start_one_run(retrain) -> None:
    _, triggers = retrain
    # GIVEN both saw no running execution and no cool-down: the claim decides
    assert triggers.claim("e-a", NOW, NOW + timedelta(minutes=10)) is True
    assert triggers.claim("e-b", NOW, NOW + timedelta(minutes=10)) is False


def test_a_run_that_fails_to_start_releases_the_cooldown(retrain) -> None:
    module, triggers = retrain
    with pytest.raises(ClientError):
        module.trigger(_event("e-1"), triggers=triggers, sfn=FakeSfn(fail=True), now=NOW)
    assert triggers.cooldown_until() is None and triggers.recorded("e-1") is None
    ok = module.trigger(_event("e-1"), triggers=triggers, sfn=FakeSfn(), now=NOW)
    assert ok["action"] == "start"


def test_a_malformed_event_is_refused(retrain) -> None:
    with pytest.raises(ValueError, match="detail-type"):
        TriggerEvent.model_validate(
            {"id": "x", "detail-type": "Other", "time": NOW.isoformat(), "detail": {}}
        )
