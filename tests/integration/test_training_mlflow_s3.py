"""The training job against the running stack: the table read from the emulated raw bucket,
models logged to the MLflow server, their artifacts in the emulated MLflow bucket, and each
registered version reproducing its training-time predictions bit for bit when loaded."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.conftest import System

SPECS = Path(__file__).resolve().parents[2] / "training_job" / "specs"
TASKS = ("anomaly", "classifier", "rul")


@pytest.fixture()
def mlflow_env(system: System, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    url = system.info["mlflow"]["url"]
    for key, value in {"MLFLOW_TRACKING_URI": url, "MLFLOW_S3_ENDPOINT_URL": system.endpoint,
                       "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return url


def test_training_registers_versions_in_s3_that_reload_bit_for_bit(
    system: System, mlflow_env: str
) -> None:
    import mlflow
    from mlflow import MlflowClient

    from training_job.core.pyfunc_model import predict_frame
    from training_job.io.registry import load_bundle
    from training_job.jobs.base import (
        BoosterParams,
        DataRef,
        FeatureParams,
        MlflowParams,
        TrainJob,
    )
    from training_job.pipeline import run_training
    from training_job.simulator import FleetConfig, simulate_fleet, write_parquet

    marker = uuid.uuid4().hex[:8]
    s3 = system.client("s3")
    raw_bucket = system.info["buckets"]["RawBucketName"]
    mlflow_bucket = system.info["buckets"]["MlflowBucketName"]
    # GIVEN a small simulated fleet in the raw-telemetry bucket
    fleet = simulate_fleet(FleetConfig(vehicles=10, hours=300, seed=5, anomaly_rate=0.02))
    uri = write_parquet(fleet, f"s3://{raw_bucket}/it/{marker}/fleet.parquet", s3_client=s3)
    fast = BoosterParams(rounds=15, early_stopping=5, params={"num_leaves": 7, "max_bin": 31})
    names = {task: f"ev-{task}-it-{marker}" for task in TASKS}
    job = TrainJob(
        data=DataRef(spec=str(SPECS / "fleet.yaml"), path=uri),
        features=FeatureParams(windows=(3, 12), stats=("mean", "slope")),
        classifier=fast,
        rul=fast,
        reference_rows=64,
        mlflow=MlflowParams(experiment=f"evpm-it-training-{marker}", names=names),
    )
    # WHEN the job trains, logs and registers through the MLflow server
    result = run_training(job, s3_client=s3)
    client = MlflowClient(tracking_uri=mlflow_env)
    mlflow.set_tracking_uri(mlflow_env)
    for task in TASKS:
        out = result.models[task]
        version = client.get_model_version(names[task], out["version"])
        assert version.run_id == out["run_id"]
        assert version.tags["data_fingerprint"] == result.fingerprint
        # AND the logged model carries the model's name (not "model" for all three)
        model_id = out["model_uri"].removeprefix("models:/")
        assert mlflow.get_logged_model(model_id).name == names[task]
        # THEN the version's artifacts are objects in the emulated MLflow bucket
        assert out["artifact_uri"].startswith(f"s3://{mlflow_bucket}/"), out["artifact_uri"]
        prefix = out["artifact_uri"].removeprefix(f"s3://{mlflow_bucket}/").rstrip("/") + "/"
        listed = s3.list_objects_v2(Bucket=mlflow_bucket, Prefix=prefix)
        keys = {item["Key"].removeprefix(prefix) for item in listed.get("Contents", [])}
        model_file = "anomaly.json" if task == "anomaly" else "model.txt"
        assert {"MLmodel", "artifacts/spec.json", f"artifacts/{model_file}"} <= keys, keys
        # AND loading by version reproduces the reference predictions bit for bit
        loaded = mlflow.pyfunc.load_model(f"models:/{names[task]}/{out['version']}")
        again = loaded.predict(out["reference_input"])
        pd.testing.assert_frame_equal(again, out["reference_output"], check_exact=True)
        bundle = load_bundle(f"models:/{names[task]}/{out['version']}")
        again = predict_frame(bundle, out["reference_input"])
        pd.testing.assert_frame_equal(again, out["reference_output"], check_exact=True)
