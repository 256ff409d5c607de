"""The validation gate: every check reported, and any failed check refuses the challenger."""

from __future__ import annotations

from typing import Any

import pytest

from evpm.gate import GateEvidence, GatePolicy, evaluate

GOOD = {
    "anomaly": {"pr_auc": 0.6, "prevalence": 0.01},
    "classifier": {"macro_f1": 0.7, "baseline_macro_f1": 0.12},
    "rul": {"rmse": 50.0, "rmse_ratio_to_baseline": 0.3},
}
PROFILE = {
    "rows": 10_000,
    "missing": {"SoC": 0.0},
    "out_of_range": {"SoC": 0},
    "class_counts": {"none": 9000, "brake_wear": 1000},
}


def model(task: str, **changes: Any) -> dict[str, Any]:
    out = {
        "name": f"ev-{task}",
        "task": task,
        "metrics": dict(GOOD[task]),
        "latency_ms_p99": 0.5,
        "artifact_bytes": 1_000_000,
        "canary": {"finite": True, "min": 0.0, "max": 3.0, "proba_sum_error": 0.0},
    }
    out.update(changes)
    return out


def judge(*models: dict[str, Any], profile: dict[str, Any] | None = None) -> Any:
    return evaluate(GateEvidence(models=list(models), data_profile=profile or PROFILE))


def test_good_challengers_without_champion_pass_with_every_check_listed() -> None:
    report = judge(model("anomaly"), model("classifier"), model("rul"))
    assert report.passed and report.reason == ""
    kinds = {(c.model, c.check) for c in report.checks}
    for name in ("ev-anomaly", "ev-classifier", "ev-rul"):
        assert {
            (name, k) for k in ("vs_champion", "floor", "latency", "artifact_size", "canary")
        } <= kinds
    assert {("*", "data_missing"), ("*", "data_ranges"), ("*", "data_class_balance")} <= kinds


@pytest.mark.parametrize(
    ("task", "mine", "theirs", "passes"),
    [
        ("rul", {"rmse": 51.0, "rmse_ratio_to_baseline": 0.3}, {"rmse": 50.0}, True),  # within 3 %
        ("rul", {"rmse": 52.0, "rmse_ratio_to_baseline": 0.3}, {"rmse": 50.0}, False),
        ("classifier", {"macro_f1": 0.69, "baseline_macro_f1": 0.12}, {"macro_f1": 0.7}, True),
        ("classifier", {"macro_f1": 0.67, "baseline_macro_f1": 0.12}, {"macro_f1": 0.7}, False),
        ("anomaly", {"pr_auc": 0.55, "prevalence": 0.01}, {"pr_auc": 0.6}, False),
    ],
)
def test_challenger_may_not_be_worse_than_champion_beyond_tolerance(
    task: str, mine: dict, theirs: dict, passes: bool
) -> None:
    report = judge(model(task, metrics=mine, champion_version=3, champion_metrics=theirs))
    [check] = [c for c in report.checks if c.check == "vs_champion"]
    assert check.passed is passes
    assert report.passed is passes
    if not passes:
        assert f"ev-{task} vs_champion" in report.reason and "v3" in report.reason


def test_floors_refuse_a_model_no_better_than_naive() -> None:
    report = judge(
        model("classifier", metrics={"macro_f1": 0.2, "baseline_macro_f1": 0.12}),
        model("rul", metrics={"rmse": 190.0, "rmse_ratio_to_baseline": 0.95}),
        model("anomaly", metrics={"pr_auc": 0.02, "prevalence": 0.01}),
    )
    assert not report.passed
    for name in ("ev-classifier", "ev-rul", "ev-anomaly"):
        assert f"{name} floor" in report.reason


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"latency_ms_p99": 25.0, "latency_ms_p50": 12.0}, "latency"),
        ({"artifact_bytes": 80 * 2**20}, "artifact_size"),
        ({"canary": {"finite": True, "min": -4.0, "max": 3.0}}, "negative RUL"),
        ({"canary": {"finite": False, "min": 0.0, "max": 3.0}}, "non-finite"),
    ],
)
def test_model_checks(changes: dict[str, Any], needle: str) -> None:
    report = judge(model("rul", **changes))
    assert not report.passed and needle in report.reason


def test_classifier_probabilities_must_sum_to_one() -> None:
    report = judge(
        model("classifier", canary={"finite": True, "min": 0, "max": 1, "proba_sum_error": 0.01})
    )
    assert "probabilities do not sum to 1" in report.reason


@pytest.mark.parametrize(
    ("profile", "needle"),
    [
        ({**PROFILE, "missing": {"SoC": 0.2}}, "data_missing"),
        ({**PROFILE, "out_of_range": {"Tire_Pressure": 500}}, "Tire_Pressure"),
        ({**PROFILE, "class_counts": {"none": 99_990, "brake_wear": 10}}, "brake_wear"),
        ({**PROFILE, "rows": 0}, "data_rows"),
    ],
)
def test_data_checks(profile: dict[str, Any], needle: str) -> None:
    report = judge(model("rul"), profile=profile)
    assert not report.passed and needle in report.reason


def test_policy_is_stated_in_the_report_and_can_be_changed() -> None:
    strict = GatePolicy(max_latency_ms=0.1)
    report = evaluate(GateEvidence(models=[model("rul")], data_profile=PROFILE), strict)
    assert report.policy.max_latency_ms == 0.1 and not report.passed
