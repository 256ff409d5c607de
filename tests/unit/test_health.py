"""rules-v1: each rule fires where it should, stays quiet on nominal data, and is vectorised."""

from __future__ import annotations

import re

import numpy as np
import pytest

from evpm import health
from evpm.health import MODEL_VERSION, RULES, assess, severity_matrix
from evpm.telemetry import FEATURES, SENSOR_RANGES, TelemetryRecord, to_matrix
from tests.unit.conftest import ROOT

# rule id → (changes that make it fire as watch, changes that make it fire as critical)
CRAFTED: dict[str, tuple[dict, dict | None]] = {
    "BAT-SOH": ({"SoH": 75.0}, {"SoH": 65.0}),
    "BAT-CYCLES": ({"Charge_Cycles": 2000.0}, {"Charge_Cycles": 3500.0}),
    "BAT-TEMP": ({"Battery_Temperature": 50.0}, {"Battery_Temperature": 65.0}),
    "MOT-TEMP": ({"Motor_Temperature": 110.0}, {"Motor_Temperature": 140.0}),
    "MOT-VIB": ({"Motor_Vibration": 5.0}, {"Motor_Vibration": 9.0}),
    "BRK-PAD": ({"Brake_Pad_Wear": 75.0}, {"Brake_Pad_Wear": 90.0}),
    "TYR-PRES-LOW": ({"Tire_Pressure": 25.0}, {"Tire_Pressure": 18.0}),
    "TYR-PRES-HIGH": ({"Tire_Pressure": 46.0}, {"Tire_Pressure": 55.0}),
    "TYR-TEMP": ({"Tire_Temperature": 85.0}, {"Tire_Temperature": 110.0}),
    "SEN-RPM": ({"Driving_Speed": 60.0, "Motor_RPM": 0.0}, None),
    "SEN-VOLT": ({"SoC": 60.0, "Battery_Voltage": 0.0}, None),
}


def _matrix(make_payload, *changes: dict) -> np.ndarray:
    return to_matrix([TelemetryRecord.model_validate(make_payload(**c)) for c in changes])


def test_model_version():
    assert MODEL_VERSION == "rules-v1"


def test_every_rule_has_a_crafted_case_and_a_row_in_rules_md():
    assert set(CRAFTED) == {rule.id for rule in RULES}
    table = (ROOT / "layers" / "evpm" / "RULES.md").read_text()
    documented = set(re.findall(r"^\| ([A-Z]{3}-[A-Z-]+) ", table, flags=re.M))
    assert documented == {rule.id for rule in RULES}


def test_nominal_row_is_ok_with_full_score(make_payload):
    [result] = assess(_matrix(make_payload, {}))
    assert result.status == "ok"
    assert result.health_score == 100.0
    assert result.failure_mode == "none"
    assert result.findings == []


@pytest.mark.parametrize("rule_id", list(CRAFTED))
def test_rule_fires_alone_on_its_crafted_rows(make_payload, rule_id):
    watch, critical = CRAFTED[rule_id]
    rule = next(r for r in RULES if r.id == rule_id)
    cases = [(watch, "watch")] + ([(critical, "critical")] if critical else [])
    for changes, severity in cases:
        # GIVEN a nominal reading with one component pushed past a limit
        [result] = assess(_matrix(make_payload, changes))
        # THEN only that rule fires, at that severity, and says why
        assert [(f.rule_id, f.severity) for f in result.findings] == [(rule_id, severity)]
        assert result.status == severity
        assert result.health_score == {"watch": 90.0, "critical": 70.0}[severity]
        assert result.failure_mode == rule.failure_mode
        assert result.findings[0].component == rule.component
        for feature in changes:
            if rule_id.startswith(("BAT", "MOT", "BRK", "TYR")):
                assert feature in result.findings[0].message


def test_values_on_the_limit_do_not_fire(make_payload):
    [result] = assess(_matrix(make_payload, {"SoH": 80.0, "Brake_Pad_Wear": 70.0}))
    assert result.findings == []


def test_tyre_findings_have_no_failure_mode(make_payload):
    [result] = assess(_matrix(make_payload, {"Tire_Pressure": 18.0}))
    assert result.status == "critical"
    assert result.failure_mode == "none"


def test_most_severe_finding_decides_the_failure_mode(make_payload):
    # brake wear critical beats battery temperature watch
    [result] = assess(_matrix(make_payload, {"Brake_Pad_Wear": 90.0, "Battery_Temperature": 50.0}))
    assert result.failure_mode == "brake_wear"
    assert [f.rule_id for f in result.findings] == ["BRK-PAD", "BAT-TEMP"]  # worst first
    assert result.health_score == 100 - 30 - 10


def test_equal_severity_goes_to_the_safety_priority(make_payload):
    changes = {"SoH": 75.0, "Battery_Temperature": 50.0, "Brake_Pad_Wear": 75.0}
    [result] = assess(_matrix(make_payload, changes))
    assert result.failure_mode == "thermal_risk"
    assert result.status == "watch"


def test_score_is_clipped_at_zero(make_payload):
    changes = {k: v for _, (_, crit) in CRAFTED.items() if crit for k, v in crit.items()}
    changes.pop("Tire_Pressure")
    [result] = assess(_matrix(make_payload, changes))
    assert result.health_score == 0.0
    assert result.status == "critical"


def test_vectorised_result_equals_per_row_result(make_payload):
    # GIVEN a batch mixing nominal rows and every crafted case
    rows = [{}]
    for watch, critical in CRAFTED.values():
        rows += [watch] + ([critical] if critical else [])
    rows.append({"SoH": 65.0, "Motor_Temperature": 140.0, "Tire_Pressure": 25.0})
    matrix = _matrix(make_payload, *rows)
    # WHEN assessed at once and one row at a time
    together = assess(matrix)
    alone = [assess(matrix[i : i + 1])[0] for i in range(matrix.shape[0])]
    # THEN the verdicts are identical
    assert together == alone


def test_random_batch_vectorised_equals_per_row():
    rng = np.random.default_rng(7)
    lows = np.array([SENSOR_RANGES[f].low for f in FEATURES])
    highs = np.array([SENSOR_RANGES[f].high for f in FEATURES])
    matrix = rng.uniform(lows, highs, size=(300, len(FEATURES)))
    together = assess(matrix)
    assert together == [assess(matrix[i : i + 1])[0] for i in range(300)]


def test_one_pass_over_the_threshold_rules_equals_each_rule_on_its_own():
    # GIVEN random readings, many of them exactly on, just above or just below a limit
    rng = np.random.default_rng(11)
    lows = np.array([SENSOR_RANGES[f].low for f in FEATURES])
    highs = np.array([SENSOR_RANGES[f].high for f in FEATURES])
    matrix = rng.uniform(lows, highs, size=(3000, len(FEATURES)))
    for rule in RULES:
        if rule.limits is not None:
            limits = [rule.limits.watch, rule.limits.critical or rule.limits.watch]
            near = np.array([np.nextafter(v, d) for v in limits for d in (-np.inf, np.inf)])
            pick = rng.random(len(matrix)) < 0.3
            matrix[pick, rule.limits.column] = rng.choice([*limits, *near], size=pick.sum())
    matrix[rng.random(matrix.shape) < 0.01] = np.nan
    # WHEN judged in one pass THEN each column is what that rule's own evaluate says
    expected = np.column_stack([rule.evaluate(matrix) for rule in RULES]).astype(np.int8)
    assert np.array_equal(severity_matrix(matrix), expected)
    assert sum(rule.limits is not None for rule in RULES) == 9  # the threshold rules


def test_empty_matrix_gives_no_assessments():
    assert assess(np.empty((0, len(FEATURES)))) == []


def test_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=r"\(n, 24\)"):
        severity_matrix(np.zeros((3, 5)))


def test_failure_modes_are_the_documented_set():
    assert set(health.FAILURE_MODES) == {
        "none",
        "battery_degradation",
        "thermal_risk",
        "motor_overheating",
        "brake_wear",
        "tire_leak",
        "sensor_fault",
    }
    assert {r.failure_mode for r in RULES} <= set(health.FAILURE_MODES)


def test_the_classifier_learns_exactly_evpms_failure_modes_in_their_order():
    """One list: the fleet spec's classes are what the rules, predictions and /feedback use."""
    import yaml

    from training_job.simulator import FAILURE_MODES as SIMULATED

    spec = yaml.safe_load((ROOT / "training_job" / "specs" / "fleet.yaml").read_text())
    assert tuple(spec["classes"]) == health.FAILURE_MODES == SIMULATED


def _judged_row_by_row(row: np.ndarray) -> health.Assessment:
    """The verdict as the rules document it, one reading at a time, validated objects."""
    severity = [int(rule.evaluate(row[None, :])[0]) for rule in RULES]
    fired = sorted((c for c, s in enumerate(severity) if s), key=lambda c: (-severity[c], c))
    if not fired:
        return health.Assessment(status="ok", health_score=100.0, failure_mode="none", findings=[])
    score = 100.0 - sum({1: 10.0, 2: 30.0}[severity[c]] for c in fired)
    priority = health.FAILURE_MODE_PRIORITY
    moded = [c for c in fired if RULES[c].failure_mode != "none"]
    winner = max(
        moded, key=lambda c: (severity[c], -priority.index(RULES[c].failure_mode)), default=None
    )
    return health.Assessment(
        status=("ok", "watch", "critical")[severity[fired[0]]],
        health_score=min(max(score, 0.0), 100.0),
        failure_mode=RULES[winner].failure_mode if winner is not None else "none",
        findings=[
            health.Finding(
                rule_id=RULES[c].id,
                component=RULES[c].component,
                severity="critical" if severity[c] == 2 else "watch",
                message=RULES[c].describe(row, severity[c]),
            )
            for c in fired
        ],
    )


def test_assessments_equal_validated_row_by_row_verdicts(make_payload):
    """Assessments are built without validation: they must equal validated ones (values,
    types, set fields, JSON), row by row, and share no findings list."""
    rng = np.random.default_rng(5)
    lows = np.array([SENSOR_RANGES[f].low for f in FEATURES])
    highs = np.array([SENSOR_RANGES[f].high for f in FEATURES])
    nominal = _matrix(make_payload, {})
    matrix = np.vstack([np.repeat(nominal, 200, axis=0), rng.uniform(lows, highs, (200, 24))])
    matrix[rng.random(400) < 0.5] = nominal[0]
    rows = [{}, {"SoH": 65.0, "Motor_Temperature": 140.0, "Tire_Pressure": 25.0}]
    rows += [c for pair in CRAFTED.values() for c in pair if c]
    matrix = np.vstack([matrix, _matrix(make_payload, *rows)])
    got = assess(matrix)
    for i, assessment in enumerate(got):
        expected = _judged_row_by_row(matrix[i])
        assert assessment == expected
        assert assessment.model_dump_json() == expected.model_dump_json()
        for a, b in [
            (assessment, expected),
            *zip(assessment.findings, expected.findings, strict=True),
        ]:
            assert a.model_fields_set == b.model_fields_set
            assert all(type(getattr(a, f)) is type(getattr(b, f)) for f in a.__dict__)
    assert len({id(a.findings) for a in got}) == len(got)
    assert {a.status for a in got} == {"ok", "watch", "critical"}
