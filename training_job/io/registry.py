"""MLflow logging and registration (aliases and version tags; no registry stages).

Kept apart from the training core so the core can be tested without a tracking server and the
registry conventions (names, tags, aliases) live in one place.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

from evpm.models import ModelBundle

__all__ = ["PYFUNC_CODE", "git_commit", "load_bundle", "log_and_register", "tracking_uri"]

PYFUNC_CODE = Path(__file__).resolve().parents[1] / "core" / "pyfunc_model.py"
_PIP = ["mlflow>=3.1,<4", "lightgbm>=4.5,<5", "numpy>=2,<3", "pandas>=2.2,<3", "pydantic>=2.9,<3"]


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` or a local SQLite file under ``.state/``."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    state = Path(".state")
    state.mkdir(exist_ok=True)
    return f"sqlite:///{state.resolve() / 'mlflow.db'}"


def git_commit() -> str:
    """Commit of the code that trained (``-dirty`` when the tree has changes)."""
    try:
        root = Path(__file__).resolve().parents[2]
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        return f"{sha}-dirty" if dirty else sha
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flat(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = value if isinstance(value, int | float | str | bool) else json.dumps(value)


def log_and_register(
    *,
    name: str,
    artifacts: dict[str, str],
    params: dict[str, Any],
    metrics: dict[str, float],
    report: dict[str, Any],
    tags: dict[str, str],
    sample_input: pd.DataFrame,
    sample_output: pd.DataFrame,
    register: bool,
    alias: str | None,
) -> dict[str, Any]:
    """Log one model in the active run and register it.

    Returns ``run_id``, ``model_uri`` (``models:/m-…``), ``artifact_uri`` (where the logged
    model's files live, e.g. ``s3://bucket/…/artifacts``: a registered version's ``source``)
    and ``version`` (None when not registered).
    """
    flat: dict[str, Any] = {}
    _flat("", params, flat)
    mlflow.log_params({k: str(v)[:6000] for k, v in flat.items()})
    mlflow.log_metrics(metrics)
    mlflow.log_dict(report, "evaluation.json")
    mlflow.set_tags(tags)
    with tempfile.TemporaryDirectory() as tmp:
        sample_input.to_parquet(Path(tmp) / "input.parquet")
        sample_output.to_parquet(Path(tmp) / "output.parquet")
        mlflow.log_artifacts(tmp, "reference")
    signature = infer_signature(sample_input, sample_output)
    info = mlflow.pyfunc.log_model(
        name=name,  # the logged model's name in MLflow's UI: ev-rul, not one "model" for all
        python_model=str(PYFUNC_CODE),
        artifacts=artifacts,
        signature=signature,
        pip_requirements=_PIP,
        registered_model_name=name if register else None,
    )
    version = None
    if register:
        version = str(info.registered_model_version)
        client = MlflowClient()
        version_tags = {**tags, "params": json.dumps(params, default=str)[:4900]}
        version_tags["metrics"] = json.dumps(metrics)[:4900]
        for key, value in version_tags.items():
            client.set_model_version_tag(name, version, key, value)
        if alias:
            client.set_registered_model_alias(name, alias, version)
    run = mlflow.active_run()
    artifact_uri = mlflow.get_logged_model(info.model_id).artifact_location
    return {
        "run_id": run.info.run_id if run else None,
        "model_uri": info.model_uri,
        "artifact_uri": artifact_uri,
        "version": version,
    }


def load_bundle(model_uri: str) -> ModelBundle:
    """The :class:`ModelBundle` of a logged or registered model (``models:/ev-rul/3``,
    ``models:/ev-rul@champion``, ``models:/m-…``, ``runs:/…`` or an artifact location).

    Downloads the model's ``MLmodel`` to find its two artifact files, then only those two
    (``spec.json`` and the LightGBM text or ``anomaly.json``), through MLflow.
    """
    import yaml
    from mlflow.artifacts import download_artifacts
    from mlflow.store.artifact.models_artifact_repo import ModelsArtifactRepository

    base = model_uri.rstrip("/")
    if base.startswith("models:/"):  # name/version, name@alias or m-… -> where the files are
        base = ModelsArtifactRepository.get_underlying_uri(base).rstrip("/")
    with tempfile.TemporaryDirectory() as tmp:
        mlmodel = Path(download_artifacts(artifact_uri=f"{base}/MLmodel", dst_path=tmp))
        flavor = yaml.safe_load(mlmodel.read_text())["flavors"]["python_function"]
        paths = {key: value["path"] for key, value in flavor["artifacts"].items()}
        local = {
            key: Path(download_artifacts(artifact_uri=f"{base}/{path}", dst_path=tmp))
            for key, path in paths.items()
        }
        return ModelBundle.from_files(local["spec"], local["model"])
