"""MLflow tracking runs with the stack: SQLite in the state folder, artifacts in emulated S3."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import System


@pytest.fixture()
def mlflow_env(system: System, monkeypatch: pytest.MonkeyPatch) -> str:
    url = system.info["mlflow"]["url"]
    for key, value in {"MLFLOW_TRACKING_URI": url, "MLFLOW_S3_ENDPOINT_URL": system.endpoint,
                       "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    return url


def test_mlflow_is_up_on_loopback_with_its_ui(system: System) -> None:
    info = system.info["mlflow"]
    assert info["running"]
    assert info["url"].startswith("http://127.0.0.1:")
    assert httpx.get(f"{info['url']}/health", timeout=5).status_code == 200
    assert "<html" in httpx.get(info["url"], timeout=10).text.lower()
    db = Path(system.info["emulator"]["state_dir"]) / "mlflow" / "mlflow.db"
    assert db.exists()


def test_artifacts_land_in_emulated_s3(system: System, mlflow_env: str, tmp_path: Path) -> None:
    import mlflow

    marker = uuid.uuid4().hex[:8]
    mlflow.set_tracking_uri(mlflow_env)
    mlflow.set_experiment(f"evpm-integration-{marker}")
    report = tmp_path / "report.json"
    report.write_text('{"ok": true}')
    with mlflow.start_run() as run:
        mlflow.log_param("marker", marker)
        mlflow.log_artifact(str(report))
    artifact_uri = run.info.artifact_uri
    bucket = system.info["buckets"]["MlflowBucketName"]
    assert artifact_uri.startswith(f"s3://{bucket}/"), artifact_uri
    key = artifact_uri.removeprefix(f"s3://{bucket}/") + "/report.json"
    body = system.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == b'{"ok": true}'
    assert os.environ["MLFLOW_S3_ENDPOINT_URL"] == system.endpoint
