"""Train on a small fleet, register, reload by version: same predictions, bit for bit."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from evpm.drift import MONITORED_SIGNALS, ReferenceProfile
from training_job.core.split import split_units_time
from training_job.io.datasets import DataSpecError
from training_job.io.registry import load_bundle
from training_job.jobs.base import BoosterParams, DataRef, FeatureParams, TrainJob
from training_job.pipeline import run_training

from .conftest import SPECS


def _job(path: Path) -> TrainJob:
    fast = BoosterParams(rounds=15, early_stopping=5, params={"num_leaves": 7, "max_bin": 31})
    return TrainJob(
        data=DataRef(spec=str(SPECS / "fleet.yaml"), path=str(path)),
        features=FeatureParams(windows=(3, 12), stats=("mean", "slope")),
        classifier=fast,
        rul=fast,
        reference_rows=64,
    )


def test_registered_versions_carry_lineage_and_reproduce_predictions(
    fleet_file: Path, mlflow_uri: str
) -> None:
    # GIVEN a small fleet WHEN the three models are trained and registered
    result = run_training(_job(fleet_file))
    client = MlflowClient(tracking_uri=mlflow_uri)
    for task, name in (
        ("anomaly", "ev-anomaly"),
        ("classifier", "ev-classifier"),
        ("rul", "ev-rul"),
    ):
        out = result.models[task]
        version = client.get_model_version(name, out["version"])
        # THEN each version carries fingerprint, feature spec, commit, params and metrics
        for tag in ("data_fingerprint", "feature_spec_version", "git_commit", "params", "metrics"):
            assert version.tags.get(tag), (name, tag)
        assert version.tags["data_fingerprint"] == result.fingerprint
        assert str(client.get_model_version_by_alias(name, "challenger").version) == out["version"]
        assert version.current_stage in (None, "None")  # no registry stages
        # AND loading by version reproduces the training-time predictions bit for bit
        mlflow.set_tracking_uri(mlflow_uri)
        loaded = mlflow.pyfunc.load_model(f"models:/{name}/{out['version']}")
        again = loaded.predict(out["reference_input"])
        pd.testing.assert_frame_equal(again, out["reference_output"], check_exact=True)
        # and in shuffled input order too (the model sorts and restores the order)
        shuffled = out["reference_input"].sample(frac=1.0, random_state=1)
        again = loaded.predict(shuffled)
        expected = out["reference_output"].loc[shuffled.index].reset_index(drop=True)
        pd.testing.assert_frame_equal(again, expected, check_exact=True)
    assert "rmse" in result.models["rul"]["metrics"]
    assert "pr_auc" in result.models["anomaly"]["metrics"]
    # AND each version carries its drift profile: the training inputs and labels, its own
    # held-out outputs under the capture's names, and the quality it is graded against
    outputs = {"anomaly": "anomaly_score", "classifier": "predicted_failure", "rul": "rul_hours"}
    quality = {"classifier": "macro_f1", "rul": "rul_mae"}
    for task, out in result.models.items():
        name = out["name"]
        version = client.get_model_version(name, out["version"])
        assert version.tags["drift_profile"] == "artifacts/drift_profile.json"
        local = mlflow.artifacts.download_artifacts(
            f"{out['artifact_uri']}/artifacts/drift_profile.json"
        )
        profile = ReferenceProfile.model_validate_json(Path(local).read_text())
        assert set(profile.columns("input")) == set(MONITORED_SIGNALS)
        assert set(profile.columns("label")) == {"true_rul_hours", "true_failure_mode"}
        assert profile.columns("output") == [outputs[task]]
        # 12 vehicles: an hour holds 12 rows, too few to calibrate on (MIN_CHUNK_ROWS)
        assert profile.numeric["SoC"].psi_limit is None and profile.rows > 1_000
        if task in quality:
            assert 0 < profile.quality[quality[task]] < 1_000


@pytest.mark.parametrize(
    ("breakage", "column"),
    [
        ("drop", "Motor_Vibration"),
        ("string", "SoC"),
        ("nan_key", "vehicle_id"),
        ("nan_key", "timestamp"),
    ],
)
def test_broken_table_is_refused_before_training(
    tmp_path: Path, small_fleet: pd.DataFrame, mlflow_uri: str, breakage: str, column: str
) -> None:
    # GIVEN a table that breaks its spec in one column
    frame = small_fleet.copy()
    if breakage == "drop":
        frame = frame.drop(columns=[column])
    elif breakage == "string":
        frame[column] = frame[column].astype(str)
    else:
        frame[column] = frame[column].astype(object)
        frame.loc[5, column] = None
    path = tmp_path / "broken.parquet"
    frame.to_parquet(path)
    # WHEN training THEN it is refused naming the column, and nothing is registered
    with pytest.raises(DataSpecError, match=column):
        run_training(_job(path))
    client = MlflowClient(tracking_uri=mlflow_uri)
    assert client.search_registered_models() == []


def test_split_keeps_test_units_and_later_period_out_of_training() -> None:
    units = np.repeat(np.arange(10), 100)
    times = np.tile(np.arange(100.0), 10)
    split = split_units_time(units, times, test_units=0.2, time_cutoff=0.75, seed=0)
    assert not np.isin(units[split.train | split.valid], split.test_units).any()
    assert times[split.train | split.valid].max() < times[split.test].min()
    assert not (split.train & split.valid).any()


def test_early_stopping_validates_on_units_it_does_not_train_on() -> None:
    units = np.repeat(np.arange(10), 100)
    times = np.tile(np.arange(100.0), 10)
    split = split_units_time(units, times, test_units=0.2, time_cutoff=0.75, seed=0)
    trained, checked = set(units[split.train]), set(units[split.valid])
    assert trained and checked and not trained & checked
    assert len(checked) == 2  # 20 % of the 8 units left after the test draw
    assert times[split.valid].max() < 75  # the training period, like the training rows


def test_rul_refit_trains_on_validation_units_for_scaled_rounds(
    fleet_file: Path, mlflow_uri: str
) -> None:
    # GIVEN a job whose RUL booster is refitted on training + validation units (1.5x rounds)
    job = _job(fleet_file)
    refit = job.rul.model_copy(update={"rounds": 40, "refit": 1.5})
    job = job.model_copy(update={"rul": refit, "models": ("rul",)})
    # WHEN it trains
    out = run_training(job).models["rul"]
    params = out["report"]["params"]
    # THEN the served booster has round(1.5 x the early-stopped round count) trees, no early
    # stopping of its own, and the interval is still calibrated (on the held-out units)
    stopped = params["best_iteration"]
    assert 0 < stopped <= 40
    assert params["refit_rounds"] == max(1, round(stopped * 1.5))
    bundle = load_bundle(out["model_uri"])
    assert bundle.model.current_iteration() == params["refit_rounds"]
    assert bundle.model.best_iteration <= 0  # every tree is served
    assert bundle.spec.interval
