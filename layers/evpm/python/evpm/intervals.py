"""Prediction intervals for a regressor, calibrated on rows it was not trained on.

A split-conformal interval: the residuals ``truth - prediction`` of held-out rows, grouped by
the size of the prediction (a RUL model is surer of "fails in two days" than of "fine for a
month", so one width for all would be too wide at one end and too narrow at the other), give
per group the residual quantiles that bracket ``level`` of the outcomes. Serving adds them to
each prediction: a table lookup, no second model. Pure numpy, so the Lambda layer can use it.
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["LAST_EDGE", "IntervalTable", "apply_interval", "fit_interval"]

IntervalTable = tuple[tuple[float, float, float], ...]
"""Rows ``(upper edge of a prediction group, low residual quantile, high residual quantile)``;
the last group's edge is :data:`LAST_EDGE` (the largest float: JSON has no infinity)."""

LAST_EDGE = sys.float_info.max


def fit_interval(
    prediction: np.ndarray, truth: np.ndarray, *, level: float = 0.9, groups: int = 5
) -> IntervalTable:
    """Residual quantiles per prediction-quantile group of held-out rows.

    Example: ``fit_interval(np.arange(100.0), np.arange(100.0) + 1, groups=2)`` is
    ``((49.5, 1.0, 1.0), (LAST_EDGE, 1.0, 1.0))``.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1) (got {level})")
    prediction = np.asarray(prediction, dtype=np.float64)
    residual = np.asarray(truth, dtype=np.float64) - prediction
    if prediction.size == 0:
        return ()
    groups = max(1, min(groups, prediction.size // 50 or 1))
    edges = np.quantile(prediction, np.linspace(0, 1, groups + 1)[1:-1]) if groups > 1 else []
    edges = np.unique(np.asarray(edges, dtype=np.float64))
    which = np.searchsorted(edges, prediction, side="left")
    tail = (1.0 - level) / 2.0
    table = []
    for g, upper in enumerate([*edges.tolist(), LAST_EDGE]):
        part = residual[which == g]
        if part.size == 0:
            continue
        lo, hi = np.quantile(part, [tail, 1.0 - tail])
        table.append((float(upper), float(lo), float(hi)))
    return tuple(table)


def apply_interval(
    table: IntervalTable, prediction: np.ndarray, *, low: float = 0.0, high: float = np.inf
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bound for each prediction, clipped to ``[low, high]``."""
    prediction = np.asarray(prediction, dtype=np.float64)
    edges = np.array([row[0] for row in table], dtype=np.float64)
    which = np.minimum(np.searchsorted(edges, prediction, side="left"), len(table) - 1)
    lo = np.array([row[1] for row in table])[which]
    hi = np.array([row[2] for row in table])[which]
    return (
        np.clip(prediction + lo, low, high),
        np.clip(prediction + hi, low, high),
    )
