"""The command line and job YAML (small data, SQLite MLflow in tmp_path), and S3 tables (moto)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from mlflow import MlflowClient
from moto import mock_aws

from training_job.cli import main
from training_job.io.datasets import load_spec, read_table, validate
from training_job.simulator import write_parquet

from .conftest import SPECS

_FAST = {"rounds": 15, "early_stopping": 5, "params": {"num_leaves": 7, "max_bin": 31}}


def _write_job(folder: Path, data: str, **extra: object) -> Path:
    job = {
        "KIND": "train",
        "data": {"spec": str(SPECS / "fleet.yaml"), "path": data},
        "features": {"windows": [3, 12], "stats": ["mean", "slope"]},
        "classifier": _FAST,
        "rul": _FAST,
        "reference_rows": 32,
        **extra,
    }
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def _report(output: str) -> dict:
    report, _ = json.JSONDecoder().raw_decode(output[output.index('{\n  "fingerprint"') :])
    return report


def test_run_job_yaml_trains_and_registers(
    tmp_path: Path, fleet_file: Path, mlflow_uri: str
) -> None:
    # GIVEN a train job YAML whose data path is relative to the job file's folder
    job = _write_job(tmp_path, fleet_file.name, mlflow={"experiment": "cli-test"})
    # WHEN it is run through the command line
    result = CliRunner().invoke(main, ["run", str(job)])
    # THEN it prints the report and registers a version of each model
    assert result.exit_code == 0, result.output
    report = _report(result.output)
    assert set(report["models"]) == {"anomaly", "classifier", "rul"}
    assert report["data_profile"]["rows"] > 0
    client = MlflowClient(tracking_uri=mlflow_uri)
    for task, name in (
        ("anomaly", "ev-anomaly"),
        ("classifier", "ev-classifier"),
        ("rul", "ev-rul"),
    ):
        assert report["models"][task]["version"] == "1"
        assert client.get_model_version(name, "1").tags["corrupt_labels"] == "false"
    assert client.get_experiment_by_name("cli-test") is not None


def test_train_command_overrides_data_and_corrupts_labels(
    tmp_path: Path, fleet_file: Path, mlflow_uri: str
) -> None:
    job = _write_job(tmp_path, "/nonexistent.parquet", models=["rul"])
    result = CliRunner().invoke(
        main, ["train", "--config", str(job), "--data", str(fleet_file), "--corrupt-labels"]
    )
    assert result.exit_code == 0, result.output
    report = _report(result.output)
    assert list(report["models"]) == ["rul"]
    version = MlflowClient(tracking_uri=mlflow_uri).get_model_version("ev-rul", "1")
    assert version.tags["corrupt_labels"] == "true"
    assert json.loads(version.tags["params"])["corrupt_labels"] is True


def test_cli_refuses_a_broken_table_naming_the_column(
    tmp_path: Path, small_fleet: pd.DataFrame, mlflow_uri: str
) -> None:
    path = tmp_path / "broken.parquet"
    small_fleet.drop(columns=["Tire_Pressure"]).to_parquet(path)
    result = CliRunner().invoke(main, ["run", str(_write_job(tmp_path, str(path)))])
    assert result.exit_code == 2
    assert "Tire_Pressure" in result.output
    assert MlflowClient(tracking_uri=mlflow_uri).search_registered_models() == []


def test_validate_and_simulate_commands(tmp_path: Path, fleet_file: Path) -> None:
    ok = CliRunner().invoke(main, ["validate", "--data", str(fleet_file)])
    assert ok.exit_code == 0 and "ok:" in ok.output
    out = tmp_path / "sim.parquet"
    sim = CliRunner().invoke(
        main, ["simulate", "--out", str(out), "--vehicles", "2", "--hours", "24", "--seed", "1"]
    )
    assert sim.exit_code == 0, sim.output
    assert len(pd.read_parquet(out)) == 48


def test_read_table_from_s3(small_fleet: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    spec = load_spec(SPECS / "fleet.yaml")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="raw-telemetry")
        uri = write_parquet(small_fleet, "s3://raw-telemetry/fleet/part-0.parquet", s3_client=s3)
        # GIVEN a table in S3 WHEN read with a given client and with the default one
        frame, digest = read_table(spec, uri, s3_client=s3)
        again, digest_again = read_table(spec, uri)
    # THEN the same rows, the same fingerprint, and the table passes its spec
    pd.testing.assert_frame_equal(frame, again)
    assert digest == digest_again and len(digest) == 64
    assert len(frame) == len(small_fleet)
    validate(frame, spec)
