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

Every rule judges the whole ``(n, 24)`` matrix at once with numpy (the threshold rules in one
pass); Python then visits only the rows on which something fired, to rank their findings and
build the messages. A nominal reading — nearly all of them — costs no Python beyond its verdict,
which keeps a single-vehicle request within its latency budget.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from evpm.prevalidated import prevalidated
from evpm.telemetry import FEATURES, SENSOR_RANGES

__all__ = [
    "FAILURE_MODES",
    "FAILURE_MODE_PRIORITY",
    "MODEL_VERSION",
    "RULES",
    "Assessment",
    "FailureMode",
    "Finding",
    "Limits",
    "Rule",
    "Severity",
    "Status",
    "Verdicts",
    "assess",
    "judge",
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
    "tire_leak",
    "sensor_fault",
]
FAILURE_MODES: tuple[FailureMode, ...] = typing.get_args(FailureMode)
"""Every failure mode evpm names, in the classifier's class order: what the rules report, the
fleet simulator labels, the classifier predicts (``training_job/specs/fleet.yaml``'s
``classes``, a test checks) and ``/feedback`` accepts. ``tire_leak`` has no rule yet: only the
classifier predicts it."""
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
class Limits:
    """A one-sensor threshold rule as data: the column and its watch/critical limits.

    Kept beside ``evaluate`` so :func:`severity_matrix` can judge every threshold rule in one
    numpy pass (a single-vehicle request otherwise pays ~40 small numpy calls for 9 rules).
    """

    column: int
    watch: float
    critical: float | None
    above: bool


@dataclass(frozen=True, slots=True)
class Rule:
    """A named check: ``evaluate`` maps the matrix to per-row severities (0, 1, 2)."""

    id: str
    component: str
    failure_mode: FailureMode
    evaluate: Callable[[np.ndarray], np.ndarray]
    describe: Callable[[np.ndarray, int], str]
    limits: Limits | None = None
    """Set for threshold rules; ``evaluate`` gives the same severities one rule at a time."""


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

    return Rule(rule_id, component, mode, evaluate, describe, Limits(col, watch, critical, above))


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

# The threshold rules as arrays (one pass in severity_matrix); the others are called one by one.
_LIMITED = np.array([i for i, r in enumerate(RULES) if r.limits is not None], dtype=np.intp)
_OTHERS = tuple(i for i, r in enumerate(RULES) if r.limits is None)
_LIMITS = [r.limits for r in RULES if r.limits is not None]
_LIMIT_COLUMNS = np.array([lim.column for lim in _LIMITS], dtype=np.intp)
_LIMIT_SIGN = np.array([1.0 if lim.above else -1.0 for lim in _LIMITS])
_LIMIT_WATCH = np.array([lim.watch for lim in _LIMITS]) * _LIMIT_SIGN
_LIMIT_CRITICAL = np.array(
    [
        np.inf if lim.critical is None else lim.critical * sign
        for lim, sign in zip(_LIMITS, _LIMIT_SIGN, strict=True)
    ]
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
    out = np.empty((matrix.shape[0], len(RULES)), dtype=np.int8)
    if _LIMITED.size:
        # ``above``: value > limit; below: -value > -limit (negation is exact, NaN stays False).
        # A rule without a critical limit compares with +inf, which nothing exceeds.
        signed = matrix[:, _LIMIT_COLUMNS] * _LIMIT_SIGN
        out[:, _LIMITED] = (signed > _LIMIT_WATCH).astype(np.int8) + (signed > _LIMIT_CRITICAL)
    for i in _OTHERS:
        out[:, i] = RULES[i].evaluate(matrix)
    return out


@dataclass(frozen=True, slots=True)
class Verdicts:
    """The verdicts on a batch, field by field: entry ``i`` of each list is reading ``i``'s.

    What :func:`judge` gives and :func:`evpm.scoring.score_records` reads: a batch's
    predictions take these values as they are, with no :class:`Assessment` object per reading
    in between. ``findings`` holds one shared empty tuple for the readings nothing fired on.
    """

    status: list[Status]
    health_score: list[float]
    failure_mode: list[FailureMode]
    findings: list[Sequence[Finding]]

    def assessments(self) -> list[Assessment]:
        """One :class:`Assessment` per reading, each with its own findings list."""
        return [
            prevalidated(
                Assessment,
                {
                    "status": status,
                    "health_score": score,
                    "failure_mode": mode,
                    "findings": list(findings),
                },
            )
            for status, score, mode, findings in zip(
                self.status, self.health_score, self.failure_mode, self.findings, strict=True
            )
        ]

    @classmethod
    def of(cls, assessments: Sequence[Assessment]) -> Verdicts:
        """The verdicts of assessments made one by one (any :class:`evpm.scoring.Scorer`)."""
        return cls(
            status=[a.status for a in assessments],
            health_score=[a.health_score for a in assessments],
            failure_mode=[a.failure_mode for a in assessments],
            findings=[a.findings for a in assessments],
        )


def assess(matrix: np.ndarray) -> list[Assessment]:
    """Judge every row of an ``(n, 24)`` feature matrix with the ``rules-v1`` rules.

    Example::

        [a.status for a in assess(to_matrix(records))]   # ["ok", "critical", ...]
    """
    return judge(matrix).assessments()


def judge(matrix: np.ndarray) -> Verdicts:
    """:func:`assess`, as :class:`Verdicts`: the batch's values without an object per reading.

    Status, score and failure mode come out of numpy for the whole batch; Python then visits
    only the rules that fired, to word their findings (worst first, then in rule order).
    Every value is already what validation would make of it (Python floats and strings, a
    status, mode and severity from their literals), so findings and assessments are built
    without validating each again: the same objects as validated ones (a test compares
    them), at a fraction of the cost; a fleet's batch has hundreds of readings, and many of
    them a finding or two.
    """
    severities = severity_matrix(matrix)
    n = severities.shape[0]
    status: list[Status] = ["ok"] * n
    score: list[float] = [100.0] * n
    modes: list[FailureMode] = ["none"] * n
    findings: list[Sequence[Finding]] = [()] * n
    fired = np.flatnonzero(severities.any(axis=1))
    if not fired.size:  # all nominal: the usual single request
        return Verdicts(status, score, modes, findings)
    sev = severities[fired]  # (fired rows, rules)
    worst = sev.max(axis=1).tolist()
    # Penalties are whole numbers, so their sum is exact in any order.
    points = np.clip(100.0 - _PENALTY[sev].sum(axis=1), 0.0, 100.0).tolist()
    # Most severe finding with a mode wins; the mode rank breaks ties between equals (rules
    # that tie on both share their mode).
    key = np.where((sev > 0) & (_MODE_RANK > 0), sev * 8 + _MODE_RANK, 0)
    best, has_mode = key.argmax(axis=1).tolist(), (key.max(axis=1) > 0).tolist()
    # Findings of every fired row, worst first, then in rule order.
    rows, rules = np.nonzero(sev)
    grade = sev[rows, rules]
    order = np.lexsort((rules, -grade, rows))
    rows, rules, grade = rows[order].tolist(), rules[order].tolist(), grade[order].tolist()
    readings = matrix[fired].tolist()  # Python floats, formatted as numpy's would be
    worded: list[list[Finding]] = [[] for _ in range(len(fired))]
    for r, c, g in zip(rows, rules, grade, strict=True):
        rule = RULES[c]
        worded[r].append(
            prevalidated(
                Finding,
                {
                    "rule_id": rule.id,
                    "component": rule.component,
                    "severity": _SEVERITIES[g],
                    "message": rule.describe(readings[r], g),
                },
            )
        )
    for k, i in enumerate(fired.tolist()):
        status[i] = _STATUSES[worst[k]]
        score[i] = points[k]
        modes[i] = RULES[best[k]].failure_mode if has_mode[k] else "none"
        findings[i] = worded[k]
    return Verdicts(status, score, modes, findings)
