"""Why a model said what it said: per-feature contributions that add up to its output.

* Tree ensembles (``ev-classifier``, ``ev-rul``): exact TreeSHAP, computed by LightGBM from the
  registered booster itself (``pred_contrib``). The contributions plus the base value add up
  to the booster's raw output: hours for RUL (before the prediction is clipped to
  ``[0, rul_cap]``), the log-odds margin of each class for the classifier (the probabilities
  are their softmax).
* ``ev-anomaly``: its score is the squared reconstruction error summed over features (see
  :class:`evpm.models.AnomalyDetector`), so each feature's squared residual is its exact
  share; the base value is 0.

Global importance: total gain per feature for the boosters; for the detector, the share of a
unit deviation in each (standardised) feature that the normal subspace cannot explain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from evpm.models import AnomalyDetector, ModelBundle
from evpm.pins import TASK_OF
from evpm.serving import History, ServedModels, model_inputs

if TYPE_CHECKING:
    from evpm.past_readings import PastReadings

__all__ = ["explain_bundle", "explain_latest", "importance"]


def _signal_of(feature: str) -> str:
    return feature.split("__", 1)[0]


def _by_signal(names: Sequence[str], contrib: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in zip(names, contrib, strict=True):
        out[_signal_of(name)] = out.get(_signal_of(name), 0.0) + float(value)
    return out


def explain_bundle(name: str, bundle: ModelBundle, x: np.ndarray) -> dict[str, Any]:
    """Contributions for one input row ``x`` (shape ``(1, features)``) of one model."""
    names = list(bundle.spec.used_features)
    if isinstance(bundle.model, AnomalyDetector):
        contrib = bundle.model.contributions(x)[0]
        score = float(contrib.sum())
        return {
            "model": name,
            "kind": "squared reconstruction residual per feature",
            "output": score,
            "base_value": 0.0,
            "contributions": dict(zip(names, map(float, contrib), strict=True)),
            "by_signal": _by_signal(names, contrib),
        }
    raw = np.asarray(bundle.model.predict(x, pred_contrib=True, num_threads=1), dtype=np.float64)
    if TASK_OF.get(name) == "classifier" or bundle.spec.task == "classifier":
        classes = list(bundle.spec.classes)
        per = raw.reshape(len(classes), len(names) + 1) if raw.shape[1] != len(names) + 1 else raw
        margins = bundle.model.predict(x, raw_score=True, num_threads=1).reshape(-1)
        out: dict[str, Any] = {
            "model": name,
            "kind": "TreeSHAP on the log-odds margin",
            "classes": {},
        }
        for k, cls in enumerate(classes):
            row = per[k] if per.shape[0] == len(classes) else per[0]
            out["classes"][cls] = {
                "output": float(margins[k] if margins.size > 1 else margins[0]),
                "base_value": float(row[-1]),
                "contributions": dict(zip(names, map(float, row[:-1]), strict=True)),
                "by_signal": _by_signal(names, row[:-1]),
            }
        return out
    row = raw[0]
    margin = float(bundle.model.predict(x, raw_score=True, num_threads=1)[0])
    return {
        "model": name,
        "kind": "TreeSHAP on the predicted hours (before clipping)",
        "output": margin,
        "base_value": float(row[-1]),
        "contributions": dict(zip(names, map(float, row[:-1]), strict=True)),
        "by_signal": _by_signal(names, row[:-1]),
    }


def explain_latest(
    models: ServedModels,
    vehicle_ids: Sequence[str],
    times: np.ndarray,
    values: np.ndarray,
    *,
    source: PastReadings | None = None,
) -> dict[str, Any]:
    """Explain each served model's output for the latest reading, the others its history;
    with a ``source``, the vehicle's stored readings before the earliest one come first (as
    the stream scores it)."""
    history = History(models.depth, source=source)
    inputs = model_inputs(models, vehicle_ids, times, values, history)
    latest = int(np.argmax(times))
    return {
        name: explain_bundle(name, models.bundles[name], x[latest : latest + 1])
        | {"version": models.versions[name]}
        for name, x in inputs.items()
    }


def importance(name: str, bundle: ModelBundle, top: int | None = None) -> dict[str, float]:
    """Global importance of each input feature, normalised to sum to 1, largest first."""
    names = list(bundle.spec.used_features)
    if isinstance(bundle.model, AnomalyDetector):
        comps = bundle.model.components
        raw = np.zeros(len(names))
        # diag(I - PᵀP); with lags, the detector's columns are the first block's (the readings)
        # clipped: a feature the subspace explains fully gives -1e-16, not a negative share
        raw[: comps.shape[1]] = np.clip(1.0 - np.sum(comps * comps, axis=0), 0.0, None)
    else:
        raw = np.asarray(bundle.model.feature_importance(importance_type="gain"), dtype=np.float64)
    total = float(raw.sum()) or 1.0
    ranked = sorted(zip(names, raw / total, strict=True), key=lambda kv: -kv[1])
    return {k: float(v) for k, v in (ranked[:top] if top else ranked)}
