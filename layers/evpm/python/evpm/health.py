"""``rules-v1``: the rule-based health assessment that scores every reading today.

Why rules first: they are explainable line by line, need no training data, and give the ML
models that follow (``ev-anomaly``, ``ev-classifier``, ``ev-rul``) a baseline and a fallback
behind the same :class:`evpm.scoring.Scorer` protocol. The table with every threshold and its
rationale is ``layers/evpm/RULES.md``; keep the two in step (a unit test checks the ids).

How a row is judged:

* each rule gives a severity per row: 0 (not fired), 1 ``watch`` or 2 ``critical``;
* ``status`` is the worst severity fired (``ok`` when none);
* ``health_score`` = 100 - 10 per ``watch`` finding - 30 per ``critical`` one, clipped to 0..100;
* ``failure_mode`` is the mode of the most severe finding that has one; ties go to the mode
  earlier in :data:`FAILURE_MODE_PRIORITY` (safety first). Tyre findings have no mode: they
  are reported as findings only.

The maths runs on the whole ``(n, 24)`` matrix at once with numpy; Python loops only over the
(fixed, small) list of rules and over the findings that fired, to build their messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from evpm.telemetry import FEATURES, SENSOR_RANGES

__all__ = [
    "FAILURE_MODES",
    "FAILURE_MODE_PRIORITY",
    "MODEL_VERSION",
    "RULES",
    "Assessment",
    "FailureMode",
    "Finding",
    "Rule",
    "Severity",
    "Status",
    "assess",
    "severity_matrix",
]

MODEL_VERSION = "rules-v1"

Status = Literal["ok", "watch", "critical"]
Severity = Literal["watch", "critical"]
FailureMode = Literal[
    "none",
    "battery_degradation",
    "thermal_risk",
    "motor_overheating",
    "brake_wear",
    "sensor_fault",
]
FAILURE_MODES: tuple[FailureMode, ...] = (
    "none",
    "battery_degradation",
    "thermal_risk",
    "motor_overheating",
    "brake_wear",
    "sensor_fault",
)
FAILURE_MODE_PRIORITY: tuple[FailureMode, ...] = (
    "thermal_risk",
    "motor_overheating",
    "brake_wear",
    "battery_degradation",
    "sensor_fault",
)
"""Tie-break between equally severe findings: the earlier mode is the likelier to hurt."""

_STATUSES: tuple[Status, ...] = ("ok", "watch", "critical")
_SEVERITIES: dict[int, Severity] = {1: "watch", 2: "critical"}
_PENALTY = np.array([0.0, 10.0, 30.0])
_COL = {name: i for i, name in enumerate(FEATURES)}


class Finding(BaseModel):
    """One rule that fired on one reading: what, where, how bad, and the values behind it."""

    model_config = ConfigDict(frozen=True)

    rule_id: str
    component: str
    severity: Severity
    message: str


class Assessment(BaseModel):
    """The verdict on one reading."""

    model_config = ConfigDict(frozen=True)

    status: Status
    health_score: float
    failure_mode: FailureMode
    findings: list[Finding]


@dataclass(frozen=True, slots=True)
class Rule:
    """A named check: ``evaluate`` maps the matrix to per-row severities (0, 1, 2)."""

    id: str
    component: str
    failure_mode: FailureMode
    evaluate: Callable[[np.ndarray], np.ndarray]
    describe: Callable[[np.ndarray, int], str]


def _above(
    rule_id: str,
    component: str,
    mode: FailureMode,
    feature: str,
    watch: float,
    critical: float | None,
) -> Rule:
    return _threshold(rule_id, component, mode, feature, watch, critical, above=True)


def _below(
    rule_id: str,
    component: str,
    mode: FailureMode,
    feature: str,
    watch: float,
    critical: float | None,
) -> Rule:
    return _threshold(rule_id, component, mode, feature, watch, critical, above=False)


def _threshold(
    rule_id: str,
    component: str,
    mode: FailureMode,
    feature: str,
    watch: float,
    critical: float | None,
    *,
    above: bool,
) -> Rule:
    col, unit = _COL[feature], SENSOR_RANGES[feature].unit
    beyond = np.greater if above else np.less

    def evaluate(matrix: np.ndarray) -> np.ndarray:
        values = matrix[:, col]
        severity = beyond(values, watch).astype(np.int8)
        if critical is not None:
            severity += beyond(values, critical).astype(np.int8)
        return severity

    def describe(row: np.ndarray, severity: int) -> str:
        limit = critical if severity == 2 and critical is not None else watch
        side = "above" if above else "below"
        return f"{feature} {row[col]:g} {unit} is {side} the {_SEVERITIES[severity]} limit {limit:g} {unit}"

    return Rule(rule_id, component, mode, evaluate, describe)


def _speed_without_rpm(matrix: np.ndarray) -> np.ndarray:
    moving = matrix[:, _COL["Driving_Speed"]] > 10.0
    still_motor = matrix[:, _COL["Motor_RPM"]] == 0.0
    return (moving & still_motor).astype(np.int8)


def _charge_without_voltage(matrix: np.ndarray) -> np.ndarray:
    charged = matrix[:, _COL["SoC"]] > 5.0
    dead_pack = matrix[:, _COL["Battery_Voltage"]] < 1.0
    return (charged & dead_pack).astype(np.int8)


RULES: tuple[Rule, ...] = (
    _below("BAT-SOH", "battery", "battery_degradation", "SoH", 80.0, 70.0),
    _above("BAT-CYCLES", "battery", "battery_degradation", "Charge_Cycles", 1500.0, 3000.0),
    _above("BAT-TEMP", "battery", "thermal_risk", "Battery_Temperature", 45.0, 60.0),
    _above("MOT-TEMP", "motor", "motor_overheating", "Motor_Temperature", 100.0, 130.0),
    _above("MOT-VIB", "motor", "motor_overheating", "Motor_Vibration", 4.5, 7.1),
    _above("BRK-PAD", "brakes", "brake_wear", "Brake_Pad_Wear", 70.0, 85.0),
    _below("TYR-PRES-LOW", "tyres", "none", "Tire_Pressure", 28.0, 22.0),
    _above("TYR-PRES-HIGH", "tyres", "none", "Tire_Pressure", 44.0, 50.0),
    _above("TYR-TEMP", "tyres", "none", "Tire_Temperature", 80.0, 100.0),
    Rule(
        "SEN-RPM",
        "sensors",
        "sensor_fault",
        _speed_without_rpm,
        lambda row, _s: (
            f"Driving_Speed {row[_COL['Driving_Speed']]:g} km/h with Motor_RPM 0: "
            "speed or rpm sensor is lying"
        ),
    ),
    Rule(
        "SEN-VOLT",
        "sensors",
        "sensor_fault",
        _charge_without_voltage,
        lambda row, _s: (
            f"SoC {row[_COL['SoC']]:g} % with Battery_Voltage {row[_COL['Battery_Voltage']]:g} V:"
            " voltage sensor or its wiring has failed"
        ),
    ),
)

# Rank of each rule's failure mode for the tie-break; rules without a mode never win.
_MODE_RANK = np.array(
    [
        len(FAILURE_MODE_PRIORITY) - FAILURE_MODE_PRIORITY.index(rule.failure_mode)
        if rule.failure_mode != "none"
        else 0
        for rule in RULES
    ]
)


def severity_matrix(matrix: np.ndarray) -> np.ndarray:
    """Per-row, per-rule severities: an ``(n, len(RULES))`` int8 array of 0, 1 or 2.

    Example: ``severity_matrix(to_matrix(records))[:, 0]`` is the BAT-SOH verdict per record.
    """
    if matrix.ndim != 2 or matrix.shape[1] != len(FEATURES):
        raise ValueError(f"expected an (n, {len(FEATURES)}) matrix, got shape {matrix.shape}")
    if not RULES:
        return np.zeros((matrix.shape[0], 0), dtype=np.int8)
    return np.column_stack([rule.evaluate(matrix) for rule in RULES]).astype(np.int8)


def assess(matrix: np.ndarray) -> list[Assessment]:
    """Judge every row of an ``(n, 24)`` feature matrix with the ``rules-v1`` rules.

    Example::

        [a.status for a in assess(to_matrix(records))]   # ["ok", "critical", ...]
    """
    severities = severity_matrix(matrix)
    n = severities.shape[0]
    worst = severities.max(axis=1, initial=0)
    scores = np.clip(100.0 - _PENALTY[severities].sum(axis=1), 0.0, 100.0)

    # Most severe finding with a mode wins; the mode rank breaks ties between equals.
    key = np.where(
        (severities > 0) & (_MODE_RANK > 0), severities.astype(np.int32) * 100 + _MODE_RANK, 0
    )
    winner = key.argmax(axis=1) if n else np.zeros(0, dtype=np.intp)
    has_mode = key.max(axis=1, initial=0) > 0

    findings: list[list[Finding]] = [[] for _ in range(n)]
    rows, cols = np.nonzero(severities)
    order = np.lexsort((cols, -severities[rows, cols], rows))  # by row, worst first, rule order
    for row, col in zip(rows[order], cols[order], strict=True):
        rule, severity = RULES[col], int(severities[row, col])
        findings[row].append(
            Finding(
                rule_id=rule.id,
                component=rule.component,
                severity=_SEVERITIES[severity],
                message=rule.describe(matrix[row], severity),
            )
        )

    return [
        Assessment(
            status=_STATUSES[worst[i]],
            health_score=float(scores[i]),
            failure_mode=RULES[winner[i]].failure_mode if has_mode[i] else "none",
            findings=findings[i],
        )
        for i in range(n)
    ]
