"""functions/lifecycle: LifecycleExecutions by outcome from the step that ends an execution, and
GateChecks by check and verdict from the Validate step (EMF read back from stdout)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.unit.conftest import FakeLambdaContext, load_function

CHECKS = [
    {"model": "*", "check": "data_rows", "passed": True, "detail": ""},
    {"model": "ev-rul", "check": "latency", "passed": True, "detail": ""},
    {"model": "ev-anomaly", "check": "latency", "passed": True, "detail": ""},
    {"model": "ev-rul", "check": "vs_champion", "passed": False, "detail": "worse"},
]


class FakeSteps:
    """Answers each action with a canned result, or raises the scripted error."""

    def __init__(self, *, gate_passed: bool = True, fail: str | None = None) -> None:
        self.gate_passed = gate_passed
        self.fail = fail

    def _maybe_fail(self, action: str) -> None:
        if self.fail == action:
            raise RuntimeError(f"{action} broke")

    def validate(self, train: Any, *, execution: str) -> dict[str, Any]:
        self._maybe_fail("validate")
        return {"passed": self.gate_passed, "reason": "", "checks": CHECKS}

    def register(self, train: Any, gate: Any, *, execution: str) -> dict[str, Any]:
        self._maybe_fail("register")
        return {"versions": {"ev-rul": 2}}

    def promote(self, versions: Any) -> dict[str, Any]:
        self._maybe_fail("promote")
        return {"before": {}, "after": {"pins": {}}}

    def smoke(self, promotion: Any, *, force_failure: bool = False) -> dict[str, Any]:
        self._maybe_fail("smoke")
        return {"expected": {}, "served": {}}

    def revert(self, promotion: Any) -> dict[str, Any]:
        self._maybe_fail("revert")
        return {"restored_pins": {}}


EVENTS = {
    "validate": {"action": "validate", "train": {}, "execution": "arn:x:exec"},
    "register": {"action": "register", "train": {}, "gate": {}},
    "promote": {"action": "promote", "registered": {"versions": {}}},
    "smoke": {"action": "smoke", "promotion": {}},
    "revert": {"action": "revert", "promotion": {}},
}


@pytest.fixture
def lifecycle(monkeypatch) -> ModuleType:
    for key, value in {
        "ARTIFACTS_BUCKET": "artifacts",
        "PINS_PARAMETER": "/evpm/serving/pins",
        "MLFLOW_URI_PARAMETER": "/evpm/mlflow/tracking-uri",
        "API_FUNCTION": "evpm-api",
        "SCORER_FUNCTION": "evpm-scorer",
        "POWERTOOLS_TRACE_DISABLED": "1",
    }.items():
        monkeypatch.setenv(key, value)
    module = load_function("lifecycle")
    module.metrics.clear_metrics()
    return module


def _run(module: ModuleType, capsys, action: str, steps: FakeSteps) -> list[dict[str, Any]]:
    """Run one step; the EMF documents it printed (raising steps re-raise, as Lambda sees)."""
    module._steps = steps
    capsys.readouterr()
    with contextlib.suppress(RuntimeError):
        module.handler(EVENTS[action], FakeLambdaContext(function_name="evpm-lifecycle"))
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if '"_aws"' in line]


def _executions(docs: list[dict[str, Any]]) -> list[tuple[str, list[float]]]:
    return [(d["outcome"], d["LifecycleExecutions"]) for d in docs if "LifecycleExecutions" in d]


@pytest.mark.parametrize(
    ("action", "steps", "outcome"),
    [
        ("smoke", FakeSteps(), "succeeded"),  # -> Promoted
        ("revert", FakeSteps(), "rolled_back"),  # -> RolledBack
        ("validate", FakeSteps(gate_passed=False), "failed"),  # -> GateRejected
        ("validate", FakeSteps(fail="validate"), "failed"),  # -> ValidationFailed
        ("register", FakeSteps(fail="register"), "failed"),  # -> RegistrationFailed
        ("promote", FakeSteps(fail="promote"), "failed"),  # -> PromotionFailed
        ("revert", FakeSteps(fail="revert"), "failed"),  # -> RollbackFailed
    ],
)
def test_the_step_that_ends_an_execution_counts_it(lifecycle, capsys, action, steps, outcome):
    docs = _run(lifecycle, capsys, action, steps)
    assert _executions(docs) == [(outcome, [1.0])]
    [doc] = [d for d in docs if "LifecycleExecutions" in d]
    [directive] = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "evpm"
    assert [sorted(d) for d in directive["Dimensions"]] == [["outcome", "service"]]
    assert doc["service"] == "evpm-lifecycle"


@pytest.mark.parametrize(
    ("action", "steps"),
    [
        ("validate", FakeSteps()),  # -> GateDecision -> Register
        ("register", FakeSteps()),
        ("promote", FakeSteps()),
        ("smoke", FakeSteps(fail="smoke")),  # -> Rollback, not an end
    ],
)
def test_a_step_that_does_not_end_the_execution_counts_none(lifecycle, capsys, action, steps):
    assert _executions(_run(lifecycle, capsys, action, steps)) == []


def test_validate_counts_its_checks_by_name_and_verdict(lifecycle, capsys) -> None:
    # WHEN the gate judges three models' checks
    docs = _run(lifecycle, capsys, "validate", FakeSteps(gate_passed=False))
    gate = [d for d in docs if "GateChecks" in d]
    # THEN one document per (check, verdict), counting the models, with bounded dimensions
    assert sorted((d["check"], d["verdict"], d["GateChecks"]) for d in gate) == [
        ("data_rows", "pass", [1.0]),
        ("latency", "pass", [2.0]),
        ("vs_champion", "fail", [1.0]),
    ]
    for doc in gate:
        [directive] = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "evpm"
        assert sorted(directive["Dimensions"][0]) == ["check", "service", "verdict"]
        assert "model" not in doc


def test_a_validate_that_raises_counts_no_checks(lifecycle, capsys) -> None:
    docs = _run(lifecycle, capsys, "validate", FakeSteps(fail="validate"))
    assert [d for d in docs if "GateChecks" in d] == []


def test_ending_outcome_follows_the_state_machine() -> None:
    steps = load_function("lifecycle", "steps")
    assert steps.ending_outcome("smoke", result={}) == "succeeded"
    assert steps.ending_outcome("smoke", failed=True) is None
    assert steps.ending_outcome("revert", result={}) == "rolled_back"
    assert steps.ending_outcome("revert", failed=True) == "failed"
    assert steps.ending_outcome("validate", result={"passed": True}) is None
    assert steps.ending_outcome("validate", result={"passed": False}) == "failed"
    assert steps.ending_outcome("register", result={}) is None
    assert steps.ending_outcome("bogus", failed=True) is None


# --- through the real state machine (moto runs the ASL, the handler runs in this process) ---


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from moto import mock_aws

    from tests.unit.test_lifecycle_machine import REGION, World

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(
        config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    ):
        world = World(monkeypatch)
        world.app.metrics.clear_metrics()
        yield world


def test_each_execution_is_counted_once_with_how_it_ended(machine, capsys) -> None:
    from tests.unit.test_lifecycle_machine import BAD, train_output

    def outcomes(payload: dict[str, Any]) -> tuple[str, list[str]]:
        capsys.readouterr()
        result = machine.run(payload)
        docs = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
        return result["status"], [d["outcome"] for d in docs if "LifecycleExecutions" in d]

    models = ["anomaly", "classifier", "rul"]
    options = {"corrupt_labels": False, "force_smoke_failure": False}
    # GIVEN a first run that promotes, one whose smoke test fails, one the gate refuses
    assert outcomes({"trigger": "manual", "models": models}) == ("SUCCEEDED", ["succeeded"])
    smoke = {"trigger": "ci", "models": models, "options": {**options, "force_smoke_failure": True}}
    assert outcomes(smoke) == ("FAILED", ["rolled_back"])
    machine.train = lambda r: train_output(r, BAD, machine.champions())
    assert outcomes({"trigger": "ci", "models": models}) == ("FAILED", ["failed"])
