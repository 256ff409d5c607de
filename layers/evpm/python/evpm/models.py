"""Serving side of the ML models: load a model's artifacts and score raw readings with them.

A registered model is two files: ``spec.json`` (the feature spec, the preprocessing and what
the output means) and a model file (LightGBM text for the boosters, ``anomaly.json`` for the
anomaly detector). :class:`ModelBundle` turns raw readings into features with
:mod:`evpm.features` and then into predictions, so the MLflow pyfunc wrapper, the Lambda
functions and the training job's own evaluation all run the same code on the same files.
Nothing is pickled: every number lives in JSON or in LightGBM's text format.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from evpm.boosters import row_predictor
from evpm.features import FeatureSpec, compute
from evpm.intervals import IntervalTable, apply_interval

__all__ = ["AnomalyDetector", "ModelBundle", "ModelSpec", "Prediction", "rul_hours"]

Task = Literal["anomaly", "classifier", "rul"]

_ROW_BY_ROW = 8
"""Up to this many rows a booster scores them one by one on LightGBM's single-row path
(:mod:`evpm.boosters`); more rows amortise ``Booster.predict``'s per-call cost."""


def rul_hours(raw: np.ndarray, cap: float | None) -> np.ndarray:
    """A regressor's RUL output held inside ``[0, cap]`` (no cap: at least 0).

    Trees can stray a little past the labels' range; the served hours and the held-out
    predictions the interval is calibrated on must be the same numbers, so both come here.
    Predictions are built without validation (the scorer's hot path), so nothing else would
    stop an uncapped model's negative hours from reaching a ``ge=0`` field.
    """
    return np.maximum(raw, 0.0) if cap is None else np.clip(raw, 0.0, cap)


class ModelSpec(BaseModel):
    """Everything besides the fitted numbers that a model needs to score readings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    task: Task
    unit_column: str
    time_column: str
    features: FeatureSpec
    used_features: tuple[str, ...]
    """Subset (in order) of ``features.names()`` that the fitted model consumes."""
    raw_inputs: tuple[str, ...] = ()
    """Columns the caller supplies besides unit and time (before categorical/derived)."""
    categorical: dict[str, tuple[str, ...]] = {}
    derived: dict[str, str] = {}
    classes: tuple[str, ...] = ()
    threshold: float | None = None
    rul_cap: float | None = None
    interval: IntervalTable = ()
    """RUL only: residual quantiles by prediction size, from held-out vehicles
    (:mod:`evpm.intervals`); empty = no interval."""
    interval_level: float | None = None
    """Share of outcomes the interval is calibrated to bracket (e.g. 0.9)."""


def _median_last(a: np.ndarray) -> np.ndarray:
    """``np.median(a, axis=-1)`` bit for bit, in a few numpy calls instead of ~15.

    The middle of the sorted values (the mean of the two middle ones, ``(lo + hi) / 2``, for
    an even count, as ``np.median`` takes it); NaN wherever the values hold a NaN (sorted last).
    The detector scores every request through this, so its fixed cost counts.
    """
    s = np.sort(a, axis=-1)
    m = a.shape[-1] // 2
    mid = s[..., m] if a.shape[-1] % 2 else (s[..., m - 1] + s[..., m]) / 2.0
    return np.where(np.isnan(s[..., -1]), np.nan, mid)


@dataclass(frozen=True, slots=True)
class AnomalyDetector:
    """Robust standardisation + PCA reconstruction error.

    ``z = (x - center) / scale``; the residual ``r = z - z P Pᵀ`` is what the principal
    subspace of normal data cannot explain. The score is ``Σ r²``, so the per-feature squared
    residuals (:meth:`contributions`) add up exactly to the score: an explanation for free.
    """

    center: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # (k, d), orthonormal rows
    lags: int = 0
    """0: score the input columns as they are. ``L > 0``: the input is, per signal block, the
    reading then its means over the last 2..L+1 readings (``FeatureSpec(windows=(2, …, L+1),
    stats=("mean",))``); each reading is scored by its deviation from the *median* of its L
    previous readings, so a past spike or dropout does not echo into the following hours."""

    @staticmethod
    def deviations(x: np.ndarray, lags: int) -> np.ndarray:
        """Reading minus the median of its ``lags`` previous readings (``x`` itself if 0)."""
        if not lags:
            return x
        d = x.shape[1] // (lags + 1)
        means = x[:, : (lags + 1) * d].reshape(x.shape[0], lags + 1, d)  # (rows, block, signal)
        # mean_w = (x_t + ... + x_{t-w+1}) / w, so x_{t-w+1} = w*mean_w - (w-1)*mean_{w-1}:
        # for every w in 2..L+1 at once, the same elementwise operations as one w at a time.
        w = np.arange(2.0, lags + 2.0)[:, None]
        past = w * means[:, 1:] - (w - 1.0) * means[:, :-1]  # (rows, lag, signal)
        return means[:, 0] - _median_last(past.transpose(0, 2, 1))

    @classmethod
    def fit(
        cls,
        x: np.ndarray,
        *,
        variance: float = 0.9,
        max_rows: int = 50_000,
        seed: int = 0,
        lags: int = 0,
    ) -> AnomalyDetector:
        """Fit on (mostly normal) rows; keep the components that explain ``variance``.

        At most ``d - 1`` of the ``d`` components are kept: a subspace spanning every feature
        explains every row, so each score would be rounding noise and nothing could be flagged
        (independent signals reach ``variance`` only with all of them).

        Scale: the IQR (``lags == 0``), or for deviations (heavy-tailed, mostly near 0) their
        99th percentile of absolute value over 2.576, so each signal's normal extremes are
        comparable and no signal that rests at 0 (parked) blows up.
        """
        rng = np.random.default_rng(seed)
        if x.shape[0] > max_rows:
            x = x[np.sort(rng.choice(x.shape[0], max_rows, replace=False))]
        x = cls.deviations(x, lags)
        center = np.median(x, axis=0)
        if lags:
            spread = np.percentile(np.abs(x - center), 99, axis=0) / 2.576
        else:
            q75, q25 = np.percentile(x, [75, 25], axis=0)
            spread = (q75 - q25) / 1.349
        std = x.std(axis=0)
        scale = np.where(spread > 1e-9, spread, np.where(std > 1e-9, std, 1.0))
        z = np.clip((x - center) / scale, -10, 10)  # outliers must not steer the subspace
        z = z - z.mean(axis=0)
        _, sing, vt = np.linalg.svd(z, full_matrices=False)
        share = np.cumsum(sing**2) / np.sum(sing**2)
        k = min(int(np.searchsorted(share, variance) + 1), z.shape[1] - 1)
        return cls(center=center, scale=scale, components=vt[:k].copy(), lags=lags)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per-feature squared residuals ``(n, d)``; each row sums to the score.

        With ``lags`` each signal's contribution sits in its reading's column (the first block)
        and the mean columns contribute 0, so columns still line up with the input features.
        """
        z = (self.deviations(x, self.lags) - self.center) / self.scale
        residual = z - (z @ self.components.T) @ self.components
        if not self.lags:
            return residual * residual
        out = np.zeros(x.shape, dtype=np.float64)
        out[:, : residual.shape[1]] = residual * residual
        return out

    def score(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score per row (higher = more unusual)."""
        return self.contributions(x).sum(axis=1)

    def to_json(self) -> str:
        """Exact JSON (Python floats round-trip through ``repr``)."""
        return json.dumps(
            {
                "center": self.center.tolist(),
                "scale": self.scale.tolist(),
                "components": self.components.tolist(),
                **({"lags": self.lags} if self.lags else {}),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> AnomalyDetector:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        return cls(
            center=np.asarray(data["center"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            components=np.asarray(data["components"], dtype=np.float64),
            lags=int(data.get("lags", 0)),
        )


@dataclass(frozen=True, slots=True)
class Prediction:
    """Model output for rows in the order given: ``value`` (score, RUL or class index),
    ``proba`` (class probabilities, classifier only), ``flag`` (anomaly over threshold)."""

    value: np.ndarray
    proba: np.ndarray | None = None
    flag: np.ndarray | None = None
    low: np.ndarray | None = None
    """RUL only: lower and upper bound of the calibrated interval (``ModelSpec.interval``)."""
    high: np.ndarray | None = None


class ModelBundle:
    """A loaded model: spec + fitted numbers; scores raw readings of one or more units.

    Example::

        bundle = ModelBundle.load(Path("artifacts"))      # spec.json + model file
        bundle.predict(values, units, times).value        # one value per input row
    """

    def __init__(self, spec: ModelSpec, model: Any) -> None:
        self.spec = spec
        self.model = model
        names = spec.features.names()
        self._columns = np.array([names.index(c) for c in spec.used_features], dtype=np.int64)
        # Set up once per loaded version: a single vehicle's request then costs the trees only.
        self._rows = row_predictor(model, name=spec.name) if spec.task != "anomaly" else None

    @staticmethod
    def model_filename(task: Task) -> str:
        """File that holds the fitted numbers for a task."""
        return "anomaly.json" if task == "anomaly" else "model.txt"

    @classmethod
    def load(cls, folder: Path) -> ModelBundle:
        """Read ``spec.json`` and the model file from ``folder``."""
        spec = ModelSpec.model_validate_json((folder / "spec.json").read_text())
        return cls.from_files(folder / "spec.json", folder / cls.model_filename(spec.task))

    @classmethod
    def from_files(cls, spec_path: Path, model_path: Path) -> ModelBundle:
        """Build from the two artifact files (the form MLflow hands them over)."""
        spec = ModelSpec.model_validate_json(Path(spec_path).read_text())
        text = Path(model_path).read_text()
        if spec.task == "anomaly":
            return cls(spec, AnomalyDetector.from_json(text))
        import lightgbm  # only the boosters need it; imported late to keep cold starts short

        return cls(spec, lightgbm.Booster(model_str=text))

    def features(self, values: np.ndarray, units: np.ndarray) -> np.ndarray:
        """Model input matrix for rows already sorted by unit then time."""
        return compute(values, units, self.spec.features)[:, self._columns]

    def predict_matrix(self, matrix: np.ndarray) -> Prediction:
        """Predict from the model input matrix (see :meth:`features`)."""
        if self.spec.task == "anomaly":
            score = self.model.score(matrix)
            threshold = self.spec.threshold if self.spec.threshold is not None else np.inf
            return Prediction(value=score, flag=score > threshold)
        if self._rows is not None and matrix.shape[0] <= _ROW_BY_ROW:
            raw = self._rows.predict(matrix)  # the booster's numbers, bit for bit
        else:
            raw = np.asarray(self.model.predict(matrix, num_threads=1), dtype=np.float64)
        if self.spec.task == "classifier":
            proba = raw if raw.ndim == 2 else np.column_stack([1.0 - raw, raw])
            if self.spec.threshold is not None and proba.shape[1] == 2:
                label = (proba[:, 1] >= self.spec.threshold).astype(np.int64)
            else:
                label = proba.argmax(axis=1)
            return Prediction(value=label, proba=proba)
        cap = self.spec.rul_cap if self.spec.rul_cap is not None else np.inf
        raw = rul_hours(raw, self.spec.rul_cap)
        if not self.spec.interval:
            return Prediction(value=raw)
        low, high = apply_interval(self.spec.interval, raw, low=0.0, high=cap)
        return Prediction(value=raw, low=low, high=high)

    def predict(self, values: np.ndarray, units: np.ndarray, times: np.ndarray) -> Prediction:
        """Predict for raw readings in any order; the output follows the input order."""
        units = np.asarray(units)
        perm = np.lexsort((np.asarray(times), units))
        pred = self.predict_matrix(self.features(np.asarray(values)[perm], units[perm]))
        inverse = np.empty_like(perm)
        inverse[perm] = np.arange(perm.size)
        return Prediction(
            value=pred.value[inverse],
            proba=None if pred.proba is None else pred.proba[inverse],
            flag=None if pred.flag is None else pred.flag[inverse],
            low=None if pred.low is None else pred.low[inverse],
            high=None if pred.high is None else pred.high[inverse],
        )
