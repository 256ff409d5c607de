"""Live quality: what the served models said, graded by what really happened.

Why beside drift: a change in *how* vehicles fail (a faulty batch of parts, a new chemistry)
can leave every reading looking as before; only the outcomes show it. Once ground truth is
joined to the captured predictions (:mod:`evpm.outcomes`), each window's RUL error, failure-mode
macro-F1 and anomaly precision are compared with the figures the version earned on its own
held-out rows (the profile's ``quality``). A figure worse than its baseline by more than its
tolerance, on at least ``min_labelled`` graded rows, is *degraded*.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from evpm.drift.profile import present

__all__ = ["QualityMetric", "QualityReport", "QualityThresholds", "live_quality", "macro_f1"]

QualityStatus = Literal["ok", "degraded", "insufficient_data"]
MetricName = Literal["rul_mae", "macro_f1", "anomaly_precision"]


class QualityThresholds(BaseModel):
    """How much worse than the baseline a live figure may be."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rul_mae_ratio: float = Field(default=1.5, gt=1, description="live MAE / baseline MAE")
    f1_drop: float = Field(default=0.15, gt=0, lt=1, description="baseline F1 - live F1")
    precision_drop: float = Field(default=0.2, gt=0, lt=1, description="baseline - live")
    min_labelled: int = Field(default=100, ge=1, description="graded rows a figure needs")


class QualityMetric(BaseModel):
    """One live figure beside its baseline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: MetricName
    status: QualityStatus
    rows: int
    live: float | None
    baseline: float | None
    limit: float | None = Field(description="the value past which the figure is degraded")


class QualityReport(BaseModel):
    """Every live figure of a window; ``degraded`` if any is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: QualityStatus
    metrics: list[QualityMetric]

    def degraded(self) -> list[str]:
        return [m.name for m in self.metrics if m.status == "degraded"]


def macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Unweighted mean F1 over every class seen in either array (as scikit-learn's
    ``f1_score(average="macro")``; a class never predicted and never true is not counted).

    Example: ``macro_f1(np.array(["a", "b"]), np.array(["a", "a"])) == 1/3``.
    """
    classes = np.union1d(truth.astype(str), predicted.astype(str))
    scores = []
    for c in classes:
        tp = float(np.sum((truth == c) & (predicted == c)))
        fp = float(np.sum((truth != c) & (predicted == c)))
        fn = float(np.sum((truth == c) & (predicted != c)))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else float("nan")


Score = Callable[[np.ndarray, np.ndarray], float]


def _mae(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.abs(predicted.astype(np.float64) - truth.astype(np.float64))))


def _f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    return macro_f1(truth.astype(str), predicted.astype(str))


def _precision(predicted: np.ndarray, truth: np.ndarray) -> float:
    flagged = predicted.astype(bool)
    return float(np.mean(truth[flagged].astype(bool))) if flagged.any() else 1.0


def _grade(
    name: MetricName,
    predicted: np.ndarray,
    truth: np.ndarray,
    score: Score,
    baseline: float | None,
    worse: Callable[[float], float],
    min_labelled: int,
) -> QualityMetric:
    """One figure on the rows that have both a prediction and a truth."""
    graded = present(predicted) & present(truth)
    rows = int(graded.sum())
    limit = None if baseline is None else round(float(worse(baseline)), 6)
    if rows < min_labelled:
        return QualityMetric(
            name=name,
            status="insufficient_data",
            rows=rows,
            live=None,
            baseline=baseline,
            limit=limit,
        )
    live = score(predicted[graded], truth[graded])
    bad = limit is not None and (live > limit if name == "rul_mae" else live < limit)
    return QualityMetric(
        name=name,
        status="degraded" if bad else "ok",
        rows=rows,
        live=round(live, 6),
        baseline=baseline,
        limit=limit,
    )


def live_quality(
    columns: Mapping[str, np.ndarray],
    baseline: Mapping[str, float],
    thresholds: QualityThresholds | None = None,
) -> QualityReport:
    """Grade a window: ``columns`` holds the predictions (``rul_hours``, ``predicted_failure``,
    ``is_anomaly``) and the joined truth (``true_rul_hours``, ``true_failure_mode``,
    ``true_is_anomaly``), NaN/``None`` where a row has no truth yet.
    """
    limits = thresholds or QualityThresholds()
    checks: list[tuple[MetricName, str, str, Score, Callable[[float], float]]] = [
        ("rul_mae", "rul_hours", "true_rul_hours", _mae, lambda b: b * limits.rul_mae_ratio),
        ("macro_f1", "predicted_failure", "true_failure_mode", _f1, lambda b: b - limits.f1_drop),
        (
            "anomaly_precision",
            "is_anomaly",
            "true_is_anomaly",
            _precision,
            lambda b: b - limits.precision_drop,
        ),
    ]
    metrics = [
        _grade(
            name,
            np.asarray(columns[pred]),
            np.asarray(columns[true]),
            score,
            baseline.get(name),
            worse,
            limits.min_labelled,
        )
        for name, pred, true, score, worse in checks
        if pred in columns and true in columns
    ]
    statuses = {m.status for m in metrics}
    status: QualityStatus = (
        "degraded" if "degraded" in statuses else "ok" if "ok" in statuses else "insufficient_data"
    )
    return QualityReport(status=status, metrics=metrics)
