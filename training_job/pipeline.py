"""The training job as a fixed sequence: read, check, featurise, split, fit, evaluate, register.

Every model is evaluated through the artifact files it will be registered with (the bundle is
re-read from disk before scoring the test set), so the reported metrics are the metrics of
the registered model, and the reference predictions logged with each run are what a later
``models:/name/version`` load must reproduce bit for bit.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd

from evpm.features import FeatureSpec, compute
from evpm.intervals import fit_interval
from evpm.models import AnomalyDetector, ModelBundle, ModelSpec, rul_hours
from training_job.core import metrics as m
from training_job.core.inputs import time_values
from training_job.core.pyfunc_model import predict_frame
from training_job.core.reference_profile import (
    PROFILE_FILE,
    classifier_quality,
    inputs_profile,
    reference_profile,
)
from training_job.core.split import split_units_time
from training_job.io import registry
from training_job.io.datasets import DatasetSpec, load_spec, prepare, read_table, validate
from training_job.jobs.base import BoosterParams, TrainJob

__all__ = ["PRIMARY_METRICS", "TrainResult", "data_profile", "fit_booster", "run_training"]

RUL_INTERVAL_LEVEL = 0.9
"""Share of held-out outcomes the served RUL interval is calibrated to bracket."""

PRIMARY_METRICS: dict[str, str] = {"anomaly": "pr_auc", "classifier": "macro_f1", "rul": "rmse"}
"""The metric each model is judged by (``rmse``: lower is better; the others: higher)."""
_CORRUPT_SEED = 20_240_101

_DEFAULT_LGB: dict[str, Any] = {
    "learning_rate": 0.08,
    "num_leaves": 63,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.7,
    "bagging_freq": 1,
    "max_bin": 63,
    "num_threads": 2,
    "verbose": -1,
    "seed": 0,
    "deterministic": True,
}


@dataclass
class TrainResult:
    """What a run produced: per model its metrics, report, registered version, reference.

    ``models[task]`` holds ``name``, ``run_id``, ``model_uri``, ``artifact_uri`` (where the
    logged model's files are: the ``source`` of a registered version), ``version`` (None when
    not registered), ``metrics``, ``primary_metric``, ``report``, the reference sample and, when
    champions were given, ``champion_metrics`` (the champion scored on the same test rows).
    ``data_profile`` describes the training rows (see :func:`data_profile`).
    """

    fingerprint: str
    seconds: float
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_profile: dict[str, Any] = field(default_factory=dict)


def fit_booster(
    x: np.ndarray,
    y: np.ndarray,
    x_valid: np.ndarray | None,
    y_valid: np.ndarray | None,
    params: BoosterParams,
    objective: dict[str, Any],
    weight: np.ndarray | None = None,
    weight_valid: np.ndarray | None = None,
) -> lgb.Booster:
    """Train a LightGBM booster, early-stopping on the validation rows when there are any."""
    full = {**_DEFAULT_LGB, **objective, **params.params}
    train = lgb.Dataset(x, y, weight=weight, free_raw_data=True)
    valid_sets, callbacks = [], []
    if x_valid is not None and y_valid is not None and len(y_valid) > 0:
        valid_sets = [lgb.Dataset(x_valid, y_valid, weight=weight_valid, reference=train)]
        callbacks = [lgb.early_stopping(params.early_stopping, verbose=False)]
    return lgb.train(
        full, train, num_boost_round=params.rounds, valid_sets=valid_sets, callbacks=callbacks
    )


def _write_bundle(folder: Path, spec: ModelSpec, model_text: str) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    spec_path = folder / "spec.json"
    spec_path.write_text(spec.model_dump_json(indent=1))
    model_path = folder / ModelBundle.model_filename(spec.task)
    model_path.write_text(model_text)
    return {"spec": str(spec_path), "model": str(model_path)}


def _write_profile(
    folder: Path,
    base: Any,
    task: str,
    bundle: ModelBundle,
    dspec: DatasetSpec,
    frame: pd.DataFrame,
    split: Any,
    prediction: Any,
    report: dict[str, Any],
) -> str:
    """The model's drift profile (:mod:`training_job.core.reference_profile`) as a file."""
    te = split.test
    quality: dict[str, float] = {}
    truth = None
    if task == "rul" and "mae" in report["metrics"]:
        quality["rul_mae"] = float(report["metrics"]["mae"])
    if task == "classifier" and dspec.class_label:
        names = np.asarray(bundle.spec.classes, dtype=object)[
            np.asarray(prediction.value, dtype=np.int64)
        ]
        quality["macro_f1"] = classifier_quality(
            frame[dspec.class_label].astype(str).to_numpy()[te], names
        )
    if task == "anomaly" and dspec.anomaly_label:
        truth = frame[dspec.anomaly_label].to_numpy().astype(bool)[te]
    profile = reference_profile(
        base,
        task,
        frame.loc[te, dspec.time],
        prediction,
        classes=tuple(bundle.spec.classes or ()),
        truth=truth,
        quality=quality,
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PROFILE_FILE
    path.write_text(profile.model_dump_json(by_alias=True))
    return str(path)


def data_profile(frame: pd.DataFrame, dspec: DatasetSpec, rows: np.ndarray) -> dict[str, Any]:
    """JSON-ready checks of the training rows for the promotion gate.

    ``rows``/``units`` counted, per-column ``missing`` fraction, ``out_of_range`` counts against
    the spec's ``ranges``, ``class_counts`` of the class label, ``rul_min``/``rul_max``.
    """
    part = frame.loc[rows]
    columns = [*dspec.features, *dspec.categorical]
    for label in (dspec.class_label, dspec.rul_label, dspec.anomaly_label):
        if label and label in part.columns:
            columns.append(label)
    profile: dict[str, Any] = {
        "rows": len(part),
        "units": int(part[dspec.unit].nunique()),
        "missing": {c: float(part[c].isna().mean()) if len(part) else 0.0 for c in columns},
        "out_of_range": {},
    }
    for col, (low, high) in dspec.ranges.items():
        if col in part.columns:
            values = pd.to_numeric(part[col], errors="coerce")
            profile["out_of_range"][col] = int(((values < low) | (values > high)).sum())
    if dspec.class_label:
        counts = part[dspec.class_label].astype(str).value_counts()
        names = list(dspec.classes) or sorted(counts.index)
        profile["class_counts"] = {c: int(counts.get(c, 0)) for c in names}
    if dspec.rul_label and len(part):
        rul = part[dspec.rul_label].astype(np.float64)
        profile["rul_min"], profile["rul_max"] = float(rul.min()), float(rul.max())
    if dspec.anomaly_label and len(part):
        profile["anomaly_rate"] = float(part[dspec.anomaly_label].astype(bool).mean())
    return profile


def run_training(
    job: TrainJob,
    *,
    s3_client: object | None = None,
    champions: Mapping[str, ModelBundle] | None = None,
) -> TrainResult:
    """Run a training job end to end; raises ``DataSpecError`` before any fit or log.

    ``champions`` (task -> loaded bundle of the model in service) are scored on exactly the
    challenger's test rows with the same evaluation, into ``models[task]["champion_metrics"]``;
    each is featurised with its own spec, so a champion of another feature spec works too.
    """
    started = time.perf_counter()
    dspec = load_spec(job.data.spec)
    raw, digest = read_table(dspec, job.data.path, s3_client)
    validate(raw, dspec)  # refuse a broken table before anything is trained or logged
    frame = prepare(raw, dspec)
    units = pd.factorize(frame[dspec.unit])[0]
    times = time_values(frame[dspec.time])
    split = split_units_time(
        units,
        times,
        test_units=job.split.test_units,
        time_cutoff=job.split.time_cutoff,
        seed=job.split.seed,
    )
    if not split.train.any() or not split.test.any():
        raise ValueError("split left no training or no test rows: use more units or time")
    fspec = FeatureSpec(
        signals=dspec.signals,
        windows=job.features.windows,
        stats=job.features.stats,
        ewm_spans=job.features.ewm_spans,
        passthrough=job.features.passthrough,
        differences=job.features.differences,
        projections=job.features.projections,
    )
    values = frame[list(fspec.inputs)].to_numpy(dtype=np.float64)
    features = compute(values, units, fspec)
    # The fixed reference sample: the first rows of the first test unit (raw columns).
    raw_cols = [dspec.unit, dspec.time, *dspec.features, *dspec.categorical]
    reference_unit = frame.loc[split.test, dspec.unit].iloc[0]
    sample = raw.loc[raw[dspec.unit] == reference_unit, raw_cols]
    sample = sample.sort_values(dspec.time).head(job.reference_rows).reset_index(drop=True)
    if isinstance(sample[dspec.unit].dtype, pd.CategoricalDtype):
        sample[dspec.unit] = sample[dspec.unit].astype(str)  # signatures know no categories
    if isinstance(sample[dspec.time].dtype, pd.DatetimeTZDtype):
        sample[dspec.time] = time_values(sample[dspec.time])  # MLflow wants naive UTC times
    result = TrainResult(
        fingerprint=digest,
        seconds=0.0,
        data_profile=data_profile(frame, dspec, split.train | split.valid),
    )
    common = {
        "unit_column": dspec.unit,
        "time_column": dspec.time,
        "raw_inputs": tuple(dspec.features) + tuple(dspec.categorical),
        "categorical": dspec.categorical,
        "derived": dspec.derived,
    }
    # The drift monitor's reference: the training rows' inputs and labels, once for all models.
    drift_base = inputs_profile(
        frame,
        split.train | split.valid,
        time_column=dspec.time,
        features=dspec.features,
        rul_label=dspec.rul_label,
        class_label=dspec.class_label,
        source=f"{dspec.name} {digest}",
    )
    mlflow.set_tracking_uri(registry.tracking_uri())
    mlflow.set_experiment(job.mlflow.experiment)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_name=f"train-{dspec.name}"):
        mlflow.set_tags(
            {
                "data_fingerprint": digest,
                "dataset": dspec.name,
                "corrupt_labels": str(job.corrupt_labels).lower(),
            }
        )
        mlflow.log_dict(result.data_profile, "data_profile.json")
        for task in job.models:
            t0 = time.perf_counter()
            fitted = _fit_task(task, job, dspec, frame, features, fspec, values, units, split)
            if fitted is None:
                continue
            spec_obj, text, report = _finish(task, job, dspec, common, fspec, *fitted)
            artifacts = _write_bundle(Path(tmp) / task, spec_obj, text)
            bundle = ModelBundle.from_files(Path(artifacts["spec"]), Path(artifacts["model"]))
            evaluated = _evaluate(task, bundle, dspec, frame, features, fspec, values, units, split)
            prediction = evaluated.pop("_prediction")
            report.update(evaluated)
            artifacts["drift_profile"] = _write_profile(
                Path(tmp) / task, drift_base, task, bundle, dspec, frame, split, prediction, report
            )
            report["fit_seconds"] = round(time.perf_counter() - t0, 2)
            report["params"]["corrupt_labels"] = job.corrupt_labels
            champion_metrics = None
            if champions and task in champions:
                champion_metrics = _evaluate(
                    task, champions[task], dspec, frame, features, fspec, values, units, split
                )["metrics"]  # (its "_prediction" is not needed)
                report["champion_metrics"] = champion_metrics
            reference = predict_frame(bundle, sample)
            tags = {
                "data_fingerprint": digest,
                "feature_spec_version": fspec.version,
                "git_commit": registry.git_commit(),
                "dataset": dspec.name,
                "task": task,
                "corrupt_labels": str(job.corrupt_labels).lower(),
                "drift_profile": f"artifacts/{PROFILE_FILE}",
            }
            metrics = {k: float(v) for k, v in report["metrics"].items()}
            primary = PRIMARY_METRICS[task]
            metrics.setdefault(primary, float("nan"))
            name = job.mlflow.names[task]
            with mlflow.start_run(run_name=name, nested=True):
                logged = registry.log_and_register(
                    name=name,
                    artifacts=artifacts,
                    params=report["params"],
                    metrics=metrics,
                    report=report,
                    tags=tags,
                    sample_input=sample,
                    sample_output=reference,
                    register=job.mlflow.register_models,
                    alias=job.mlflow.alias,
                )
            result.models[task] = {
                **logged,
                "name": name,
                "metrics": metrics,
                "primary_metric": {"name": primary, "value": metrics[primary]},
                "report": report,
                "reference_input": sample,
                "reference_output": reference,
            }
            if champion_metrics is not None:
                result.models[task]["champion_metrics"] = {
                    k: float(v) for k, v in champion_metrics.items()
                }
    result.seconds = time.perf_counter() - started
    return result


def _fit_task(
    task: str,
    job: TrainJob,
    dspec: DatasetSpec,
    frame: pd.DataFrame,
    features: np.ndarray,
    fspec: FeatureSpec,
    values: np.ndarray,
    units: np.ndarray,
    split: Any,
) -> tuple[Any, ...] | None:
    """Fit one model on the training rows; None when the data set has no label for it."""
    tr, va = split.train, split.valid
    if task == "anomaly":
        aspec = _anomaly_spec(fspec, job.anomaly.window, job.anomaly.lags)
        x = compute(values, units, aspec)
        detector = AnomalyDetector.fit(x[tr], variance=job.anomaly.variance, lags=job.anomaly.lags)
        quantile = 0.5 if job.corrupt_labels else job.anomaly.quantile
        threshold = float(np.quantile(detector.score(x[tr]), quantile))
        return aspec, detector, threshold
    if task == "classifier":
        if not dspec.class_label:
            return None
        classes = dspec.classes or tuple(sorted(frame[dspec.class_label].astype(str).unique()))
        y = pd.Categorical(frame[dspec.class_label].astype(str), categories=classes).codes
        if job.corrupt_labels:
            y = _permute_training(y, tr | va)
        objective: dict[str, Any] = (
            {"objective": "multiclass", "num_class": len(classes)}
            if len(classes) > 2
            else {"objective": "binary"}
        )
        weights = _class_weights(y[tr], len(classes), job.classifier.balance)
        booster = fit_booster(
            features[tr],
            y[tr],
            features[va],
            y[va],
            job.classifier,
            objective,
            weight=None if weights is None else weights[y[tr]],
            weight_valid=None if weights is None else weights[y[va]],
        )
        return classes, booster, objective
    if not dspec.rul_label:
        return None
    y = frame[dspec.rul_label].to_numpy(dtype=np.float64)
    if job.corrupt_labels:
        y = _permute_training(y, tr | va)
    objective = {"objective": "regression"}
    booster = fit_booster(features[tr], y[tr], features[va], y[va], job.rul, objective)
    # The interval is calibrated on the validation vehicles, which the booster never saw.
    interval: tuple[tuple[float, float, float], ...] = ()
    if va.any():
        held_out = rul_hours(
            np.asarray(booster.predict(features[va], num_threads=1), dtype=np.float64),
            dspec.rul_cap,
        )
        interval = fit_interval(held_out, y[va], level=RUL_INTERVAL_LEVEL)
    rounds = {"best_iteration": booster.best_iteration, "refit_rounds": 0}
    if job.rul.refit > 0 and va.any():
        rounds["refit_rounds"] = max(1, round(booster.best_iteration * job.rul.refit))
        both = tr | va
        params = job.rul.model_copy(update={"rounds": rounds["refit_rounds"]})
        booster = fit_booster(features[both], y[both], None, None, params, objective)
    return booster, float(y[tr].mean()), interval, rounds


def _class_weights(y: np.ndarray, k: int, balance: float) -> np.ndarray | None:
    """Per-class row weight ``(n / (k * n_c)) ** balance`` (None when ``balance`` is 0)."""
    if balance <= 0:
        return None
    counts = np.bincount(y, minlength=k).astype(np.float64)
    present = max(1, int((counts > 0).sum()))
    return (len(y) / (present * np.maximum(counts, 1.0))) ** balance


def _permute_training(y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Copy of ``y`` with the labels of ``rows`` shuffled among themselves (fixed seed)."""
    out = np.array(y, copy=True)
    idx = np.flatnonzero(rows)
    out[idx] = out[np.random.default_rng(_CORRUPT_SEED).permutation(idx)]
    return out


def _anomaly_spec(fspec: FeatureSpec, window: int, lags: int) -> FeatureSpec:
    """The detector's own small spec: readings and means over the last 2..lags+1 readings
    (from which it recovers the previous readings), or with ``lags == 0`` readings, distance
    from and spread of the last ``window`` readings."""
    if lags:
        return FeatureSpec(
            signals=fspec.signals, windows=tuple(range(2, lags + 2)), stats=("mean",)
        )
    return FeatureSpec(signals=fspec.signals, windows=(window,), stats=("delta", "std"))


def _finish(
    task: str,
    job: TrainJob,
    dspec: DatasetSpec,
    common: dict[str, Any],
    fspec: FeatureSpec,
    *fitted: Any,
) -> tuple[ModelSpec, str, dict[str, Any]]:
    """Model spec, model text and the report's parameter part for one fitted model."""
    name = job.mlflow.names[task]
    if task == "anomaly":
        aspec, detector, threshold = fitted
        spec = ModelSpec(
            name=name,
            task="anomaly",
            features=aspec,
            used_features=tuple(aspec.names()),
            threshold=threshold,
            **common,
        )
        params = job.anomaly.model_dump() | {"components": int(detector.components.shape[0])}
        return spec, detector.to_json(), {"params": params}
    if task == "classifier":
        classes, booster, objective = fitted
        spec = ModelSpec(
            name=name,
            task="classifier",
            features=fspec,
            used_features=tuple(fspec.names()),
            classes=classes,
            **common,
        )
        params = {
            **_DEFAULT_LGB,
            **objective,
            **job.classifier.params,
            "rounds": job.classifier.rounds,
            "balance": job.classifier.balance,
            "best_iteration": booster.best_iteration,
        }
        return spec, booster.model_to_string(), {"params": params, "classes": list(classes)}
    booster, train_mean, interval, rounds = fitted
    spec = ModelSpec(
        name=name,
        task="rul",
        features=fspec,
        used_features=tuple(fspec.names()),
        rul_cap=dspec.rul_cap,
        interval=interval,
        interval_level=RUL_INTERVAL_LEVEL if interval else None,
        **common,
    )
    params = {
        **_DEFAULT_LGB,
        "objective": "regression",
        **job.rul.params,
        "rounds": job.rul.rounds,
        **rounds,  # best_iteration (early stopping) and refit_rounds (0: not refitted)
        "refit": job.rul.refit,
    }
    return spec, booster.model_to_string(), {"params": params, "train_mean": train_mean}


def _evaluate(
    task: str,
    bundle: ModelBundle,
    dspec: DatasetSpec,
    frame: pd.DataFrame,
    features: np.ndarray,
    fspec: FeatureSpec,
    values: np.ndarray,
    units: np.ndarray,
    split: Any,
) -> dict[str, Any]:
    """Test-set metrics of the re-loaded bundle against a naive baseline (and, under
    ``_prediction``, its predictions on the test rows, for the drift profile).

    The model input is built from the bundle's own feature spec (only the challenger's
    ``features`` matrix is reused when the spec is the same), so any bundle can be scored.
    """
    te = split.test
    if bundle.spec.features == fspec:
        x_te = features[te][:, bundle._columns]
    else:
        own = np.isin(units, split.test_units)  # whole test units: their full past is there
        raw = frame.loc[own, list(bundle.spec.features.inputs)].to_numpy(dtype=np.float64)
        x_te = bundle.features(raw, units[own])[te[own]]
    nominal = _nominal_test_rows(dspec, frame, split, bundle.spec.features.max_window)
    if task == "anomaly":
        pred = bundle.predict_matrix(x_te)
        assert pred.flag is not None
        if not dspec.anomaly_label:
            out = {"flag_rate": float(pred.flag.mean())}
        else:
            truth = frame[dspec.anomaly_label].to_numpy().astype(bool)[te]
            out = m.anomaly_metrics(truth, pred.value, pred.flag)
        return {
            "metrics": out | m.nominal_rate("nominal_flag_rate", pred.flag, nominal),
            "_prediction": pred,
        }
    pred = bundle.predict_matrix(x_te)
    if task == "classifier":
        classes = bundle.spec.classes
        y = pd.Categorical(frame[dspec.class_label].astype(str), categories=classes).codes
        y_train = y[split.train]
        report = m.classifier_metrics(y[te], pred.value, pred.proba, y_train, classes)
        if classes and classes[0] == _healthy_class(dspec, frame):
            failing = np.asarray(pred.value) != 0  # any class but the healthy first one
            report["metrics"] |= m.nominal_rate("nominal_failure_rate", failing, nominal)
        return report | {"_prediction": pred}
    y = frame[dspec.rul_label].to_numpy(dtype=np.float64)
    report = m.regression_metrics(y[te], pred.value, float(y[split.train].mean()))
    if pred.low is not None and pred.high is not None:
        inside = (y[te] >= pred.low) & (y[te] <= pred.high)
        report["metrics"]["interval_coverage"] = float(inside.mean()) if inside.size else 0.0
        report["metrics"]["interval_mean_width"] = float(np.mean(pred.high - pred.low))
    return report | {"_prediction": pred}


def _healthy_class(dspec: DatasetSpec, frame: pd.DataFrame) -> str | None:
    """The class that means "no failure": the first of the spec's classes (``none`` in the
    fleet, ``0`` in AI4I), as the classifier and the scorer order them."""
    if not dspec.class_label:
        return None
    classes = dspec.classes or tuple(sorted(frame[dspec.class_label].astype(str).unique()))
    return classes[0] if classes else None


def _nominal_test_rows(
    dspec: DatasetSpec, frame: pd.DataFrame, split: Any, window: int
) -> np.ndarray | None:
    """Which test rows are nominal readings (a mask over the test rows), or None when the
    data set does not say which readings are healthy.

    A nominal reading is one of a held-out vehicle, labelled healthy (no failure within the
    label's horizon: ``failure_mode`` ``none`` in the fleet), whose features see a full
    ``window`` of its own past, as every served reading after a vehicle's first week does.
    The share of them a model flags is its false-alarm rate on a healthy fleet: what
    ``evpm send`` compares the stream's rates with (``nominal_flag_rate`` of the anomaly
    detector, ``nominal_failure_rate`` of the classifier). Readings, not whole vehicles: a
    vehicle healthy over the whole test period is one far from any failure, and the rate over
    the few such vehicles of a test split is a handful of vehicles' luck.
    """
    healthy = _healthy_class(dspec, frame)
    if healthy is None:
        return None
    labelled = frame[dspec.class_label].astype(str).to_numpy() == healthy
    position = frame.groupby(dspec.unit, observed=True, sort=False).cumcount().to_numpy()
    return (labelled & (position >= window - 1))[split.test]


def report_json(result: TrainResult) -> str:
    """Summary of a run for the command line (no frames)."""
    return json.dumps(
        {
            "fingerprint": result.fingerprint,
            "seconds": round(result.seconds, 1),
            "models": {
                k: {
                    "name": v["name"],
                    "version": v["version"],
                    "run_id": v["run_id"],
                    "metrics": v["metrics"],
                    **(
                        {"champion_metrics": v["champion_metrics"]}
                        if "champion_metrics" in v
                        else {}
                    ),
                }
                for k, v in result.models.items()
            },
            "data_profile": result.data_profile,
        },
        indent=2,
    )
