"""The drift monitor's reference for a trained model: its training data and its own answers.

Why at training time: the monitor compares production with *what this version learnt from*
(:mod:`evpm.drift.profile`), and only the training run holds that data. The profile is logged
beside the model's files (``artifacts/drift_profile.json``), so a pinned version carries its
reference with it and a rollback brings the old reference back too.

What goes in, with the names the scorer's data capture uses (:mod:`evpm.drift.capture`):

* inputs: the data set's numeric features on the training rows, less the cumulative counters
  (:data:`evpm.drift.CUMULATIVE_SIGNALS`);
* labels, on the same rows: ``true_rul_hours`` and ``true_failure_mode``, as the ground-truth
  join produces them for production readings;
* outputs, on the held-out rows (what the model says about data it did not see, which is what
  production is): ``anomaly_score``, ``predicted_failure`` or ``rul_hours``;
* quality: the held-out figures live quality is compared with (``rul_mae``, ``macro_f1``,
  ``anomaly_precision``).

Strata and chunks come from the time column when it is a date-time (hour of day, and one
chunk per hour); a data set timed in cycles has one stratum and no calibration chunks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from evpm.drift import CUMULATIVE_SIGNALS, ReferenceProfile, Role, build_profile
from evpm.drift.quality import macro_f1

__all__ = ["PROFILE_FILE", "classifier_quality", "inputs_profile", "reference_profile"]

PROFILE_FILE = "drift_profile.json"


def _hours_and_chunks(times: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(times.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(times):
        naive = times.dt.tz_convert("UTC").dt.tz_localize(None) if times.dt.tz else times
        return naive.dt.hour.to_numpy(), naive.to_numpy().astype("datetime64[h]").astype(np.int64)
    return np.zeros(len(times), dtype=np.int64), None


def inputs_profile(
    frame: pd.DataFrame,
    rows: np.ndarray,
    *,
    time_column: str,
    features: tuple[str, ...],
    rul_label: str | None,
    class_label: str | None,
    source: str,
) -> ReferenceProfile:
    """Inputs and labels of the training ``rows`` (shared by the run's three models)."""
    part = frame.loc[rows]
    hours, chunks = _hours_and_chunks(part[time_column])
    columns: dict[str, np.ndarray] = {}
    roles: dict[str, Role] = {}
    for name in features:
        if name in CUMULATIVE_SIGNALS or not pd.api.types.is_numeric_dtype(part[name]):
            continue
        values = part[name].to_numpy(dtype=np.float64)
        if np.isfinite(values).any():  # a column with no value has no distribution to keep
            columns[name], roles[name] = values, "input"
    if rul_label:
        columns["true_rul_hours"] = part[rul_label].to_numpy(dtype=np.float64)
        roles["true_rul_hours"] = "label"
    if class_label:
        columns["true_failure_mode"] = part[class_label].astype(str).to_numpy(dtype=object)
        roles["true_failure_mode"] = "label"
    return build_profile(columns, roles, hours, chunks=chunks, source=source)


def reference_profile(
    base: ReferenceProfile,
    task: str,
    test_times: pd.Series,
    prediction: Any,
    *,
    classes: tuple[str, ...] = (),
    truth: np.ndarray | None = None,
    quality: dict[str, float] | None = None,
) -> ReferenceProfile:
    """``base`` plus one model's outputs on the held-out rows and its quality baseline.

    ``prediction`` is the bundle's ``predict_matrix`` result on those rows (``value``, and
    ``flag`` for the anomaly detector); ``truth`` the held-out anomaly labels, if any.
    """
    hours, chunks = _hours_and_chunks(test_times)
    value = np.asarray(prediction.value)
    baseline = dict(quality or {})
    if task == "anomaly":
        columns: dict[str, np.ndarray] = {"anomaly_score": value.astype(np.float64)}
        flag = getattr(prediction, "flag", None)
        if truth is not None and flag is not None and np.asarray(flag).any():
            baseline["anomaly_precision"] = float(np.mean(np.asarray(truth)[np.asarray(flag)]))
    elif task == "classifier":
        names = np.asarray(classes, dtype=object)
        columns = {"predicted_failure": names[value.astype(np.int64)]}
    else:
        columns = {"rul_hours": value.astype(np.float64)}
    outputs = build_profile(columns, dict.fromkeys(columns, "output"), hours, chunks=chunks)
    return base.model_copy(
        update={
            "numeric": {**base.numeric, **outputs.numeric},
            "categorical": {**base.categorical, **outputs.categorical},
            "quality": baseline,
        }
    )


def classifier_quality(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Macro-F1 as live quality computes it (so the baseline and the live figure agree)."""
    return macro_f1(np.asarray(truth, dtype=str), np.asarray(predicted, dtype=str))
