"""Evaluation metrics, each beside the naive baseline it has to beat."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    mean_absolute_error,
    roc_auc_score,
)

__all__ = [
    "anomaly_metrics",
    "classifier_metrics",
    "nominal_rate",
    "phm08_score",
    "regression_metrics",
    "rmse",
]


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    """Root mean squared error."""
    return float(np.sqrt(np.mean((np.asarray(p) - np.asarray(y)) ** 2)))


def phm08_score(y: np.ndarray, p: np.ndarray) -> float:
    """PHM08 asymmetric score: late predictions (d > 0) cost more than early ones."""
    d = np.asarray(p, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return float(np.sum(np.where(d < 0, np.exp(-d / 13.0) - 1.0, np.exp(d / 10.0) - 1.0)))


def regression_metrics(y: np.ndarray, p: np.ndarray, train_mean: float) -> dict[str, Any]:
    """RMSE and MAE vs. predicting the training mean (the naive baseline)."""
    base = rmse(y, np.full_like(y, train_mean))
    model = rmse(y, p)
    return {
        "metrics": {
            "rmse": model,
            "mae": float(mean_absolute_error(y, p)),
            "baseline_rmse": base,
            "rmse_ratio_to_baseline": model / base if base else float("nan"),
            "test_rows": float(len(y)),
        }
    }


def classifier_metrics(
    y: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    y_train: np.ndarray,
    classes: Sequence[str],
) -> dict[str, Any]:
    """Macro-F1 and accuracy vs. always predicting the training majority class.

    Macro averages run over the classes that occur in the test rows or in the predictions
    (sklearn's default): a class absent from both is neither right nor wrong, so it must
    not count as F1 = 0 (with 2 of 7 fleet classes absent that capped macro-F1 at 5/7).
    """
    present = np.union1d(np.unique(y), np.unique(pred)).astype(np.int64)
    labels = [int(c) for c in present if 0 <= c < len(classes)]
    all_labels = list(range(len(classes)))
    majority = int(np.bincount(y_train, minlength=len(classes)).argmax())
    base = np.full_like(y, majority)
    base_labels = [int(c) for c in np.union1d(np.unique(y), [majority])]
    per_class = f1_score(y, pred, labels=all_labels, average=None, zero_division=0)
    out = {
        "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(y, pred)),
        "baseline_macro_f1": float(
            f1_score(y, base, labels=base_labels, average="macro", zero_division=0)
        ),
        "baseline_accuracy": float(accuracy_score(y, base)),
        "test_rows": float(len(y)),
    }
    if proba is not None and len(classes) == 2 and len(np.unique(y)) == 2:
        out["roc_auc"] = float(roc_auc_score(y, proba[:, 1]))
        out["pr_auc"] = float(average_precision_score(y, proba[:, 1]))
    return {
        "metrics": out,
        "per_class_f1": {
            c: float(f)
            for i, (c, f) in enumerate(zip(classes, per_class, strict=True))
            if i in labels
        },
        "test_class_counts": {
            c: int(n) for c, n in zip(classes, np.bincount(y, minlength=len(classes)), strict=True)
        },
    }


def anomaly_metrics(
    truth: np.ndarray, score: np.ndarray, flag: np.ndarray | None
) -> dict[str, Any]:
    """PR-AUC against injected anomalies, beside the prevalence (a random score's PR-AUC)."""
    out = {"prevalence": float(truth.mean()), "test_rows": float(len(truth))}
    if truth.any() and not truth.all():
        out["pr_auc"] = float(average_precision_score(truth, score))
        out["roc_auc"] = float(roc_auc_score(truth, score))
        out["pr_auc_lift"] = out["pr_auc"] / out["prevalence"]
    if flag is not None:
        out["flag_rate"] = float(flag.mean())
        out["f1_at_threshold"] = float(f1_score(truth, flag, zero_division=0))
    return out


def nominal_rate(name: str, flagged: np.ndarray, nominal: np.ndarray | None) -> dict[str, float]:
    """``{name: share of the nominal rows flagged, name + "_rows": how many}``; empty when
    the data set labels no row nominal (a rate of nothing would be NaN in the registry).

    ``flagged`` and ``nominal`` are aligned boolean masks over the test rows.
    """
    if nominal is None or not nominal.any():
        return {}
    return {name: float(np.asarray(flagged)[nominal].mean()), f"{name}_rows": float(nominal.sum())}
