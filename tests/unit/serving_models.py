"""Small real model bundles (LightGBM boosters and a PCA detector) for serving tests.

They are fitted here on synthetic readings in well under a second, so the serving tests run
the real runtime code on real artifacts without a training run or a registry.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from evpm.features import FeatureSpec, compute
from evpm.intervals import LAST_EDGE
from evpm.models import AnomalyDetector, ModelBundle, ModelSpec
from evpm.telemetry import FEATURES

SIGNALS = ("Battery_Temperature", "Motor_Temperature", "Tire_Pressure", "SoH")
CLASSES = ("none", "thermal_risk", "tire_leak")


def readings(
    vehicles: int = 6, hours: int = 60, seed: int = 0
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Per-vehicle hourly readings: ids, epoch seconds, ``(n, 24)`` values in FEATURES order."""
    rng = np.random.default_rng(seed)
    ids, times, rows = [], [], []
    base = rng.normal(50, 5, size=len(FEATURES))
    for v in range(vehicles):
        drift = rng.normal(0, 0.2, size=len(FEATURES))
        for h in range(hours):
            ids.append(f"EV-{v:04d}")
            times.append(1.7e9 + 3600.0 * h)
            rows.append(base + drift * h + rng.normal(0, 1, size=len(FEATURES)))
    return ids, np.asarray(times), np.asarray(rows)


def _spec(name: str, task: str, fspec: FeatureSpec, **extra: object) -> ModelSpec:
    return ModelSpec(
        name=name,
        task=task,  # type: ignore[arg-type]
        unit_column="vehicle_id",
        time_column="timestamp",
        features=fspec,
        used_features=tuple(fspec.names()),
        raw_inputs=FEATURES,
        **extra,  # type: ignore[arg-type]
    )


def bundles(seed: int = 0) -> dict[str, ModelBundle]:
    """``ev-anomaly``, ``ev-classifier``, ``ev-rul`` fitted on :func:`readings`."""
    ids, _, values = readings(seed=seed)
    units = np.unique(ids, return_inverse=True)[1]
    cols = [FEATURES.index(s) for s in SIGNALS]
    fspec = FeatureSpec(signals=SIGNALS, windows=(3, 12), stats=("mean", "std", "slope"))
    x = compute(values[:, cols], units, fspec)
    rng = np.random.default_rng(seed)
    y_cls = rng.integers(0, len(CLASSES), size=len(x))
    y_rul = np.abs(x[:, 0] - 40) * 3 + rng.normal(0, 1, size=len(x))
    params = {"verbose": -1, "num_threads": 1, "deterministic": True, "min_data_in_leaf": 5}
    cls = lgb.train({**params, "objective": "multiclass", "num_class": 3}, lgb.Dataset(x, y_cls), 8)
    rul = lgb.train({**params, "objective": "regression"}, lgb.Dataset(x, y_rul), 8)
    # As the training job builds it: readings and their means over 2..L+1 readings, scored by
    # the deviation from the median of the L previous readings.
    aspec = FeatureSpec(signals=SIGNALS, windows=(2, 3, 4), stats=("mean",))
    ax = compute(values[:, cols], units, aspec)
    det = AnomalyDetector.fit(ax, lags=3)
    threshold = float(np.quantile(det.score(ax), 0.95))
    return {
        "ev-anomaly": ModelBundle(_spec("ev-anomaly", "anomaly", aspec, threshold=threshold), det),
        "ev-classifier": ModelBundle(
            _spec("ev-classifier", "classifier", fspec, classes=CLASSES), cls
        ),
        "ev-rul": ModelBundle(
            _spec(
                "ev-rul",
                "rul",
                fspec,
                rul_cap=500.0,
                interval=((20.0, -5.0, 4.0), (LAST_EDGE, -30.0, 25.0)),
                interval_level=0.9,
            ),
            rul,
        ),
    }
