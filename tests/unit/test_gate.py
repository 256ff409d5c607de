"""The validation gate: every check reported, and any failed check refuses the challenger."""

from __future__ import annotations

import math
from typing import Any

import pytest

from evpm.gate import NO_CHAMPION, GateEvidence, GatePolicy, evaluate

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


def without(record: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != key}


def check_of(report: Any, model_name: str, kind: str) -> Any:
    [check] = [c for c in report.checks if (c.model, c.check) == (model_name, kind)]
    return check


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
        ({"latency_ms_p99": 25.0, "latency_ms_p50": 12.0}, "p99 25.000 ms"),
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


# Fails closed: a missing metric, count or measurement is a failed check naming it ----------


@pytest.mark.parametrize("task", ["anomaly", "classifier", "rul"])
@pytest.mark.parametrize("given", ["absent", "other metrics only", "nan"])
def test_champion_without_the_metric_is_refused_naming_it(task: str, given: str) -> None:
    metric = {"anomaly": "pr_auc", "classifier": "macro_f1", "rul": "rmse"}[task]
    theirs = {"absent": {}, "other metrics only": {"roc_auc": 0.9}, "nan": {metric: math.nan}}
    report = judge(model(task, champion_version=4, champion_metrics=theirs[given]))
    check = check_of(report, f"ev-{task}", "vs_champion")
    assert not check.passed and not report.passed
    assert f"ev-{task} vs_champion: champion v4 has no finite {metric}" in report.reason


@pytest.mark.parametrize(
    ("champion", "needle"),
    [
        ({"champion_version": 4}, "champion v4 has no metrics"),
        ({"champion_metrics": {"rmse": 50.0}}, "without a champion version"),
    ],
)
def test_half_a_champion_is_refused(champion: dict[str, Any], needle: str) -> None:
    report = judge(model("rul", **champion))
    assert not check_of(report, "ev-rul", "vs_champion").passed and needle in report.reason


def test_first_model_of_a_name_passes_the_comparison_and_says_why() -> None:
    report = judge(model("rul"), model("classifier", champion_version=None, champion_metrics=None))
    assert report.passed
    for name in ("ev-rul", "ev-classifier"):
        check = check_of(report, name, "vs_champion")
        assert check.passed and check.detail.startswith(NO_CHAMPION)
    assert NO_CHAMPION == "no champion: first model of this name, comparison skipped"


def test_first_model_still_faces_every_other_check() -> None:
    report = judge(model("rul", latency_ms_p99=None))
    assert check_of(report, "ev-rul", "vs_champion").passed
    assert not report.passed and "ev-rul latency" in report.reason


@pytest.mark.parametrize(
    "profile",
    [
        without(PROFILE, "class_counts"),
        {**PROFILE, "class_counts": None},
        {**PROFILE, "class_counts": "none=9000"},
    ],
)
def test_profile_without_class_counts_is_refused_naming_them(profile: dict[str, Any]) -> None:
    report = judge(model("rul"), profile=profile)
    assert not check_of(report, "*", "data_class_balance").passed
    assert "* data_class_balance: no class counts (class_counts)" in report.reason


@pytest.mark.parametrize(
    ("counts", "needle"),
    [
        ({}, "class_counts total 0"),
        ({"none": 0, "brake_wear": 0}, "class_counts total 0"),
        ({"none": 9000, "brake_wear": math.nan}, "no class count for ['brake_wear']"),
        ({"none": 9000, "brake_wear": None}, "no class count for ['brake_wear']"),
    ],
)
def test_unusable_class_counts_are_refused(counts: dict[str, Any], needle: str) -> None:
    report = judge(model("rul"), profile={**PROFILE, "class_counts": counts})
    assert not report.passed and needle in report.reason


@pytest.mark.parametrize(
    "changes",
    [{"latency_ms_p99": None}, {"latency_ms_p99": math.nan}, {"latency_ms_p99": -1.0}],
)
def test_missing_latency_measurement_is_refused(changes: dict[str, Any]) -> None:
    report = judge(model("rul", latency_ms_p50=0.2, **changes))
    assert not check_of(report, "ev-rul", "latency").passed
    assert "ev-rul latency: no p99 latency measurement" in report.reason


def test_absent_latency_key_is_refused_not_a_validation_error() -> None:
    report = judge(without(model("rul"), "latency_ms_p99"))
    assert not report.passed and "no p99 latency measurement" in report.reason


def test_latency_budget_applies_to_the_p99_not_the_median() -> None:
    slow_tail = judge(model("rul", latency_ms_p50=1.0, latency_ms_p99=12.0))
    check = check_of(slow_tail, "ev-rul", "latency")
    assert not check.passed and check.detail.startswith("p99 12.000 ms vs budget 10.0 ms")
    fast = check_of(
        judge(model("rul", latency_ms_p50=1.0, latency_ms_p99=2.0)), "ev-rul", "latency"
    )
    assert fast.passed and fast.detail == "p99 2.000 ms vs budget 10.0 ms (p50 1.000 ms)"


@pytest.mark.parametrize(
    ("task", "metrics", "needle"),
    [
        ("anomaly", {"pr_auc": 0.6}, "floor: no finite prevalence"),
        ("anomaly", {"pr_auc": 0.6, "prevalence": 0.0}, "no labelled anomalies"),
        ("classifier", {"macro_f1": 0.7}, "floor: no finite baseline_macro_f1"),
        ("classifier", {"macro_f1": 0.7, "baseline_macro_f1": -math.inf}, "baseline_macro_f1"),
        ("rul", {"rmse": 50.0, "rmse_ratio_to_baseline": math.nan}, "rmse_ratio_to_baseline"),
        ("rul", {"rmse": math.nan, "rmse_ratio_to_baseline": 0.3}, "no finite rmse"),
    ],
)
def test_missing_or_non_finite_metrics_are_refused_naming_them(
    task: str, metrics: dict[str, float], needle: str
) -> None:
    report = judge(model(task, metrics=metrics))
    assert not report.passed and needle in report.reason


@pytest.mark.parametrize(
    ("task", "changes", "needle"),
    [
        ("rul", {"artifact_bytes": None}, "artifact_size: no artifact size measurement"),
        ("rul", {"canary": {}}, "canary: no canary outputs"),
        ("rul", {"canary": {"min": 0.0, "max": 3.0}}, "no canary 'finite'"),
        ("rul", {"canary": {"finite": True, "min": math.nan, "max": 3.0}}, "canary min"),
        ("anomaly", {"canary": {"finite": True, "max": 3.0}}, "no finite canary min"),
        ("rul", {"canary": {"finite": True, "min": 0.0, "max": 3.0, "rows": 0}}, "canary rows"),
        (
            "classifier",
            {"canary": {"finite": True, "min": 0.0, "max": 1.0}},
            "no finite canary proba_sum_error",
        ),
        (
            "classifier",
            {"canary": {"finite": True, "min": 0, "max": 1, "proba_sum_error": math.nan}},
            "no finite canary proba_sum_error",
        ),
    ],
)
def test_missing_measurements_of_the_artifact_are_refused_naming_them(
    task: str, changes: dict[str, Any], needle: str
) -> None:
    report = judge(model(task, **changes))
    assert not report.passed and needle in report.reason


@pytest.mark.parametrize(
    ("profile", "needle"),
    [
        (without(PROFILE, "rows"), "data_rows: no row count"),
        ({**PROFILE, "rows": math.nan}, "data_rows: no row count"),
        (without(PROFILE, "missing"), "data_missing: no per-column missing fractions"),
        ({**PROFILE, "missing": {}}, "data_missing: no per-column missing fractions"),
        ({**PROFILE, "missing": {"SoC": 0.0, "SoH": math.nan}}, "fraction for ['SoH']"),
        (without(PROFILE, "out_of_range"), "data_ranges: no out-of-range counts"),
        ({**PROFILE, "out_of_range": {"SoC": None}}, "no out-of-range count for ['SoC']"),
    ],
)
def test_profile_without_a_measurement_is_refused_naming_it(
    profile: dict[str, Any], needle: str
) -> None:
    report = judge(model("rul"), profile=profile)
    assert not report.passed and needle in report.reason


def test_a_dataset_that_declares_no_ranges_passes_the_range_check() -> None:
    report = judge(model("rul"), profile={**PROFILE, "out_of_range": {}})
    check = check_of(report, "*", "data_ranges")
    assert report.passed and check.passed and check.detail == "no column declares a range"
