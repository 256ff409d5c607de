"""Jobs: strict, frozen pydantic models chosen by ``KIND`` and loaded from YAML.

A job file is the whole description of a run (what data, which features, which models, which
parameters), so a training run can be repeated from the file alone and reviewed as a diff.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from evpm.features import Projection

__all__ = [
    "AnomalyParams",
    "BoosterParams",
    "DataRef",
    "FeatureParams",
    "Job",
    "MlflowParams",
    "SimulateJob",
    "SplitParams",
    "TrainJob",
    "ValidateJob",
    "load_job",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataRef(_Strict):
    """A table and the spec that describes it (paths relative to the job file's folder)."""

    spec: str
    path: str


class FeatureParams(_Strict):
    """Rolling-window settings for :class:`evpm.features.FeatureSpec`."""

    windows: tuple[int, ...] = (6, 24, 72)
    stats: tuple[Literal["mean", "std", "slope", "min", "max", "delta"], ...] = (
        "mean",
        "std",
        "slope",
    )
    ewm_spans: tuple[int, ...] = ()
    passthrough: tuple[str, ...] = ()
    differences: tuple[tuple[str, str], ...] = ()
    """Signal pairs whose difference is windowed too (see ``FeatureSpec.differences``)."""
    projections: tuple[Projection, ...] = ()
    """``(series, threshold, above|below)``: hours until the trend reaches the threshold, 0
    once it is on the failed side (see ``FeatureSpec.projections``)."""


class SplitParams(_Strict):
    """Hold out whole units and a later period: test = test units after the cutoff."""

    test_units: float = Field(0.2, gt=0, lt=1)
    time_cutoff: float = Field(0.75, gt=0, lt=1)
    """Quantile of the time column at which training ends and testing starts."""
    seed: int = 0


class BoosterParams(_Strict):
    """LightGBM parameters (passed through) and the number of boosting rounds."""

    rounds: int = 300
    early_stopping: int = 30
    params: dict[str, Any] = {}
    refit: float = Field(0.0, ge=0, le=3)
    """RUL only: after early stopping, fit again on the training *and* validation units for
    ``refit x best_iteration`` rounds (0: keep the early-stopped booster). The validation
    units are a fifth of the training fleet, and a model of few vehicles gains more from a
    quarter more of them than early stopping's precision is worth; more rows carry more
    rounds, hence a factor above 1. The RUL interval is still calibrated on the validation
    units, with the early-stopped booster that never saw them."""
    balance: float = Field(0.0, ge=0, le=1)
    """Classifier only: weight each training row by ``(n / (k * n_class)) ** balance``;
    0 = unweighted, 1 = fully balanced classes, 0.5 = in between."""


class AnomalyParams(_Strict):
    """PCA variance kept, the training-score quantile that flags an anomaly, and the input.

    ``lags > 0``: each reading's deviation from the median of its ``lags`` previous readings
    (robust to a past spike); ``lags == 0``: distance from and spread over ``window`` readings.
    """

    variance: float = Field(0.99, gt=0, le=1)
    quantile: float = Field(0.99, gt=0, lt=1)
    lags: int = Field(3, ge=0, le=24)
    window: int = 6


class MlflowParams(_Strict):
    """Where and how to log; ``alias`` is set on each new version when given."""

    experiment: str = "evpm-training"
    register_models: bool = True
    alias: str | None = "challenger"
    names: dict[str, str] = {
        "anomaly": "ev-anomaly",
        "classifier": "ev-classifier",
        "rul": "ev-rul",
    }


class TrainJob(_Strict):
    """Read, check, featurise, split, fit, evaluate, log and register the models."""

    KIND: Literal["train"] = "train"
    data: DataRef
    features: FeatureParams = FeatureParams()
    split: SplitParams = SplitParams()
    models: tuple[Literal["anomaly", "classifier", "rul"], ...] = ("anomaly", "classifier", "rul")
    anomaly: AnomalyParams = AnomalyParams()
    classifier: BoosterParams = BoosterParams()
    rul: BoosterParams = BoosterParams()
    mlflow: MlflowParams = MlflowParams()
    reference_rows: int = 256
    corrupt_labels: bool = False
    """Sabotage switch for lifecycle tests: permute the classifier and RUL labels of the
    training rows (seeded; test rows keep their true labels) and flag half of all rows as
    anomalous, so the run's challengers are clearly worse than an honest run's."""


class SimulateJob(_Strict):
    """Simulate a fleet and write it as Parquet to a path or an ``s3://`` URI."""

    KIND: Literal["simulate"] = "simulate"
    out: str
    vehicles: int = 500
    hours: int = 2000
    seed: int = 7
    anomaly_rate: float = 0.01


class ValidateJob(_Strict):
    """Check a table against its data-set spec without training."""

    KIND: Literal["validate"] = "validate"
    data: DataRef


Job = Annotated[TrainJob | SimulateJob | ValidateJob, Field(discriminator="KIND")]
_ADAPTER: TypeAdapter[Job] = TypeAdapter(Job)


def load_job(path: str | Path) -> TrainJob | SimulateJob | ValidateJob:
    """Load a job YAML; relative data paths are resolved against the file's folder."""
    path = Path(path)
    raw = yaml.safe_load(path.read_text())
    data = raw.get("data") if isinstance(raw, dict) else None
    if isinstance(data, dict):
        for key in ("spec", "path"):
            value = data.get(key)
            if isinstance(value, str) and not value.startswith("s3://"):
                candidate = Path(value)
                if not candidate.is_absolute() and not candidate.exists():
                    data[key] = str((path.parent / candidate).resolve())
    return _ADAPTER.validate_python(raw)
