"""The training worker answers every Train task exactly once: success with evidence, or failure
with the cause (the state machine then ends TrainingFailed with it)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from tests.unit.serving_models import SIGNALS, bundles, readings
from training_job import worker


class FakeSfn:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def send_task_success(self, **kw: Any) -> None:
        self.calls.append(("success", kw))

    def send_task_failure(self, **kw: Any) -> None:
        self.calls.append(("failure", kw))

    def send_task_heartbeat(self, **kw: Any) -> None:
        self.calls.append(("heartbeat", kw))


def message(**request: Any) -> str:
    body = {"trigger": "manual", "models": ["rul"], **request}
    return json.dumps({"taskToken": "tok-1", "execution": "arn:x:exec", "request": body})


def test_success_answers_with_the_evidence(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[worker.TrainRequest] = []

    def fake_train(request: worker.TrainRequest, **_: Any) -> dict[str, Any]:
        seen.append(request)
        return {"models": [], "data_profile": {"rows": 1}}

    monkeypatch.setattr(worker, "train_for_lifecycle", fake_train)
    sfn = FakeSfn()
    ok = worker.handle_message(
        message(options={"corrupt_labels": True, "force_smoke_failure": False}),
        sfn=sfn,
        s3=None,
        registry=None,
        raw_bucket="raw",
        loader=None,  # type: ignore[arg-type]
    )
    assert ok and seen[0].options.corrupt_labels is True
    [(kind, call)] = [c for c in sfn.calls if c[0] != "heartbeat"]
    assert kind == "success" and call["taskToken"] == "tok-1"
    assert json.loads(call["output"])["execution"] == "arn:x:exec"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (message(models=[]), "models"),
        (message(models=["engine"]), "engine"),
        (message(dataset="cmapss"), "dataset"),
    ],
)
def test_bad_requests_fail_the_task_with_the_reason(body: str, needle: str) -> None:
    sfn = FakeSfn()
    ok = worker.handle_message(body, sfn=sfn, s3=None, registry=None, raw_bucket="raw", loader=None)  # type: ignore[arg-type]
    assert not ok
    [(kind, call)] = sfn.calls
    assert kind == "failure" and call["error"] == "TrainingFailed" and needle in call["cause"]


def test_training_errors_fail_the_task_with_the_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any, **__: Any) -> dict[str, Any]:
        raise ValueError("column 'SoC' has NaN in 3 rows")

    monkeypatch.setattr(worker, "train_for_lifecycle", boom)
    sfn = FakeSfn()
    assert not worker.handle_message(
        message(), sfn=sfn, s3=None, registry=None, raw_bucket="r", loader=None
    )  # type: ignore[arg-type]
    [(kind, call)] = [c for c in sfn.calls if c[0] != "heartbeat"]
    assert kind == "failure" and call["cause"] == "ValueError: column 'SoC' has NaN in 3 rows"


def test_measure_reports_latency_and_canary_outputs() -> None:
    _ids, _, values = readings(vehicles=1, hours=30)
    from evpm.telemetry import FEATURES

    sample = values[:, [FEATURES.index(s) for s in SIGNALS]]
    for name, bundle in bundles().items():
        out = worker.measure(bundle, sample, repeats=20)
        assert out["latency_ms_p99"] > 0
        assert out["canary"]["finite"] and out["canary"]["rows"] == 30
        if name == "ev-classifier":
            assert out["canary"]["proba_sum_error"] < 1e-9
        if name == "ev-rul":
            assert out["canary"]["min"] >= 0
    assert np.isfinite(out["latency_ms_p99"])
