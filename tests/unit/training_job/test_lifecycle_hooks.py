"""Hooks the model lifecycle uses: data profile, champions scored on the same test rows,
sabotaged (label-corrupted) challengers, artifact locations and loading a bundle by URI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from training_job.core.pyfunc_model import predict_frame
from training_job.io.registry import load_bundle
from training_job.jobs.base import BoosterParams, DataRef, FeatureParams, TrainJob
from training_job.pipeline import PRIMARY_METRICS, run_training

from .conftest import SPECS

TASKS = ("anomaly", "classifier", "rul")


def _job(path: Path, **update: object) -> TrainJob:
    fast = BoosterParams(rounds=25, early_stopping=5, params={"num_leaves": 7, "max_bin": 31})
    job = TrainJob(
        data=DataRef(spec=str(SPECS / "fleet.yaml"), path=str(path)),
        features=FeatureParams(windows=(3, 12), stats=("mean", "slope")),
        classifier=fast,
        rul=fast,
        reference_rows=48,
    )
    return job.model_copy(update=update)


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory, small_fleet: pd.DataFrame):
    """One honest run in its own MLflow store (module-wide: the tests only read it)."""
    folder = tmp_path_factory.mktemp("honest")
    path = folder / "fleet.parquet"
    small_fleet.to_parquet(path)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.chdir(folder)
        result = run_training(_job(path))
    return uri, path, result


def test_each_model_names_run_artifacts_version_and_primary_metric(honest) -> None:
    uri, _, result = honest
    client = MlflowClient(tracking_uri=uri)
    for task in TASKS:
        out = result.models[task]
        assert out["run_id"] and out["model_uri"].startswith("models:/")
        version = client.get_model_version(out["name"], out["version"])
        assert version.run_id == out["run_id"]
        assert out["artifact_uri"].rstrip("/").endswith("artifacts")
        assert Path(out["artifact_uri"].removeprefix("file://"), "MLmodel").exists()
        primary = PRIMARY_METRICS[task]
        assert math.isfinite(out["metrics"][primary])
        assert out["primary_metric"] == {"name": primary, "value": out["metrics"][primary]}
        assert client.get_run(out["run_id"]).data.tags["corrupt_labels"] == "false"
        assert version.tags["corrupt_labels"] == "false"


def test_data_profile_describes_the_training_rows(honest, small_fleet: pd.DataFrame) -> None:
    _, _, result = honest
    profile = json.loads(json.dumps(result.data_profile))  # JSON-serialisable as it is
    assert 0 < profile["rows"] < len(small_fleet)
    assert 0 < profile["units"] < small_fleet["vehicle_id"].nunique()
    assert set(profile["missing"]) >= {"SoC", "Tire_Pressure", "failure_mode", "rul_hours"}
    assert all(v == 0.0 for v in profile["missing"].values())
    assert set(profile["out_of_range"]) == set(small_fleet.columns[2:26])
    assert sum(profile["class_counts"].values()) == profile["rows"]
    assert "none" in profile["class_counts"]
    assert 0 <= profile["rul_min"] <= profile["rul_max"] <= 720


def test_load_bundle_by_version_and_by_model_uri_reproduces_reference(honest) -> None:
    uri, _, result = honest
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        for task in TASKS:
            out = result.models[task]
            for model_uri in (f"models:/{out['name']}/{out['version']}", out["model_uri"]):
                bundle = load_bundle(model_uri)
                assert bundle.spec.task == task
                again = predict_frame(bundle, out["reference_input"])
                pd.testing.assert_frame_equal(again, out["reference_output"], check_exact=True)


def test_champions_are_scored_on_the_same_rows_and_sabotage_is_worse(
    honest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri, path, first = honest
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    champions = {
        task: load_bundle(f"models:/{first.models[task]['name']}/{first.models[task]['version']}")
        for task in TASKS
    }
    # GIVEN champions of another feature spec WHEN a sabotaged challenger is trained
    job = _job(path, corrupt_labels=True, features=FeatureParams(windows=(6,), stats=("mean",)))
    second = run_training(job, champions=champions)
    for task in TASKS:
        out = second.models[task]
        # THEN each champion is scored with its own spec exactly as when it was trained
        assert out["champion_metrics"].keys() == out["metrics"].keys()
        for key, value in first.models[task]["metrics"].items():
            assert out["champion_metrics"][key] == pytest.approx(value, rel=1e-12, nan_ok=True)
        assert out["report"]["params"]["corrupt_labels"] is True
        client = MlflowClient(tracking_uri=uri)
        assert (
            client.get_model_version(out["name"], out["version"]).tags["corrupt_labels"] == "true"
        )
    # AND the sabotaged challengers learn nothing: no better than the naive baselines
    rul = second.models["rul"]["metrics"]
    assert rul["rmse_ratio_to_baseline"] > 0.9
    assert second.models["anomaly"]["metrics"]["flag_rate"] > 0.3  # flags about half of all
