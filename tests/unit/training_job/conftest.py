"""Small simulated fleets and a file-store MLflow in tmp_path: no network, seconds per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from training_job.simulator import FleetConfig, simulate_fleet, write_parquet

SPECS = Path(__file__).resolve().parents[3] / "training_job" / "specs"
DATASETS = Path(__file__).resolve().parents[4] / "shared" / "datasets"


@pytest.fixture(scope="session")
def small_fleet():
    """12 vehicles x 400 hours; enough for every label to occur in a split."""
    return simulate_fleet(FleetConfig(vehicles=12, hours=400, seed=3, anomaly_rate=0.02))


@pytest.fixture
def fleet_file(tmp_path: Path, small_fleet) -> Path:
    return Path(write_parquet(small_fleet, str(tmp_path / "fleet.parquet")))


@pytest.fixture
def mlflow_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    return uri
