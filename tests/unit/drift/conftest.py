"""A reference fleet and captured windows built the way the scorer captures them."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from evpm.drift import MONITORED_SIGNALS, ReferenceProfile, build_profile, encode_capture
from evpm.predictions import Prediction, record_id
from evpm.telemetry import FEATURES
from training_job.simulator import FleetConfig, simulate_fleet

CAPTURED_AT = datetime(2024, 5, 1, 12, tzinfo=UTC)


def capture_objects(frame: pd.DataFrame, versions: dict[str, str], batch: int = 250) -> list[bytes]:
    """``frame``'s rows as capture objects, scored by ``versions`` (RUL = the truth + noise)."""
    rng = np.random.default_rng(0)
    stamps = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.000000Z").to_numpy()
    ids = frame["vehicle_id"].astype(str).to_numpy()
    rul = np.clip(frame["rul_hours"].to_numpy() + rng.normal(0, 30, len(frame)), 0, None)
    readings = frame[list(FEATURES)].to_numpy()
    out = []
    for start in range(0, len(frame), batch):
        rows = range(start, min(start + batch, len(frame)))
        preds = [
            Prediction.model_construct(
                vehicle_id=ids[i],
                ts=stamps[i],
                record_id=record_id(ids[i], stamps[i]),
                status="ok",
                health_score=100.0,
                failure_mode="none",
                findings=[],
                model_versions={"health": "rules-v1", **versions},
                scored_at=CAPTURED_AT,
                rul_hours=float(rul[i]),
                predicted_failure="none",
                anomaly_score=None,
            )
            for i in rows
        ]
        out.append(encode_capture(preds, readings[start : start + batch], captured_at=CAPTURED_AT))
    return out


@pytest.fixture(scope="session")
def reference_fleet() -> pd.DataFrame:
    return simulate_fleet(FleetConfig(vehicles=300, hours=800, seed=7))


@pytest.fixture(scope="session")
def rul_profile(reference_fleet: pd.DataFrame) -> ReferenceProfile:
    """ev-rul's profile as training writes it: inputs, labels, its outputs, its MAE."""
    f = reference_fleet
    columns = {name: f[name].to_numpy() for name in MONITORED_SIGNALS}
    columns["true_rul_hours"] = f["rul_hours"].to_numpy()
    columns["true_failure_mode"] = f["failure_mode"].astype(str).to_numpy(dtype=object)
    roles = {
        **dict.fromkeys(MONITORED_SIGNALS, "input"),
        "true_rul_hours": "label",
        "true_failure_mode": "label",
    }
    hours = f["timestamp"].dt.hour.to_numpy()
    chunks = f["timestamp"].dt.tz_localize(None).to_numpy().astype("datetime64[h]").astype(np.int64)
    base = build_profile(columns, roles, hours, chunks=chunks)
    rng = np.random.default_rng(1)
    rul = np.clip(f["rul_hours"].to_numpy() + rng.normal(0, 30, len(f)), 0, None)
    outputs = build_profile({"rul_hours": rul}, {"rul_hours": "output"}, hours, chunks=chunks)
    return base.model_copy(
        update={"numeric": {**base.numeric, **outputs.numeric}, "quality": {"rul_mae": 24.0}}
    )
