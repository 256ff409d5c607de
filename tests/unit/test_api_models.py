"""The API with real pinned models: predictions name them, explanations add up, importance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.unit.conftest import NOMINAL, load_function
from tests.unit.fakes import FakeGateway, FakeRoles, InMemoryLabels, offline_models
from tests.unit.serving_models import bundles


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("PREDICTIONS_TABLE", "evpm-predictions")
    monkeypatch.setenv("LABELS_TABLE", "evpm-labels")
    module = load_function("api")
    module.app.state.roles = FakeRoles({"k-fleet": "fleet-service", "k-viewer": "viewer"})
    module.app.state.labels = InMemoryLabels()
    offline_models(module.app, bundles=bundles())
    return module


@pytest.fixture
def client(api: ModuleType) -> TestClient:
    return TestClient(FakeGateway(api.app), headers={"x-api-key": "k-fleet"})


def history(hours: int = 12, vehicle: str = "EV-0042") -> list[dict[str, Any]]:
    start = datetime(2024, 5, 1, tzinfo=UTC)
    rng = np.random.default_rng(3)
    out = []
    for h in range(hours):
        record = {
            **NOMINAL,
            "vehicle_id": vehicle,
            "timestamp": (start + timedelta(hours=h)).isoformat(),
        }
        record["Battery_Temperature"] = float(30 + h + rng.normal())
        out.append(record)
    return out


def test_predict_names_the_pinned_versions_and_gives_model_outputs(client: TestClient) -> None:
    body = client.post("/predict", json=NOMINAL).json()
    assert body["model_versions"] == {
        "health": "rules-v1",
        "ev-anomaly": "1",
        "ev-classifier": "2",
        "ev-rul": "1",
    }
    assert body["rul_hours"] >= 0 and isinstance(body["is_anomaly"], bool)
    # the calibrated interval of the pinned RUL version, by the size of the prediction
    rul = body["rul_hours"]
    low, high = (-5.0, 4.0) if rul <= 20 else (-30.0, 25.0)
    assert body["rul_low_hours"] == pytest.approx(min(max(rul + low, 0.0), 500.0))
    assert body["rul_high_hours"] == pytest.approx(min(max(rul + high, 0.0), 500.0))
    assert set(body["failure_probabilities"]) == {"none", "thermal_risk", "tire_leak"}
    assert body["predicted_failure"] in body["failure_probabilities"]


def test_explanations_add_up_to_the_served_outputs(client: TestClient) -> None:
    records = history()
    explained = client.post("/explain", json={"records": records[::-1]})  # any order
    assert explained.status_code == 200, explained.text
    body = explained.json()
    assert body["ts"].startswith("2024-05-01T11:00:00")
    served = client.post("/predict/batch", json={"records": records}).json()["predictions"][-1]
    rul = body["models"]["ev-rul"]
    assert abs(rul["base_value"] + sum(rul["contributions"].values()) - rul["output"]) < 1e-6
    assert np.clip(rul["output"], 0, 500) == pytest.approx(served["rul_hours"], abs=1e-9)
    margins = []
    for name, cls in body["models"]["ev-classifier"]["classes"].items():
        assert abs(cls["base_value"] + sum(cls["contributions"].values()) - cls["output"]) < 1e-6
        assert sum(cls["by_signal"].values()) == pytest.approx(sum(cls["contributions"].values()))
        margins.append((name, cls["output"]))
    soft = np.exp([m for _, m in margins])
    soft /= soft.sum()
    for (name, _), p in zip(margins, soft, strict=True):
        assert served["failure_probabilities"][name] == pytest.approx(p, abs=1e-9)
    anomaly = body["models"]["ev-anomaly"]
    assert sum(anomaly["contributions"].values()) == pytest.approx(anomaly["output"], abs=1e-9)
    assert anomaly["output"] == pytest.approx(served["anomaly_score"], abs=1e-9)
    assert body["model_versions"]["ev-rul"] == "1"


def test_explain_wants_one_vehicle(client: TestClient) -> None:
    records = history(3) + history(2, vehicle="EV-0007")
    response = client.post("/explain", json={"records": records})
    assert response.status_code == 422
    assert "one vehicle" in response.json()["detail"] and "EV-0007" in response.json()["detail"]


def test_importance_of_a_pinned_model(client: TestClient) -> None:
    body = client.get("/models/ev-rul/importance", params={"top": 3}).json()
    assert body["version"] == 1 and len(body["importance"]) == 3
    values = list(body["importance"].values())
    assert values == sorted(values, reverse=True) and 0 < sum(values) <= 1 + 1e-9
    full = client.get("/models/ev-anomaly/importance").json()["importance"]
    assert sum(full.values()) == pytest.approx(1.0)
    assert client.get("/models/ev-nothing/importance").status_code == 404


def test_nothing_pinned_means_nothing_to_explain(api: ModuleType, client: TestClient) -> None:
    offline_models(api.app)
    response = client.post("/explain", json={"records": history(2)})
    assert response.status_code == 409 and "no model is pinned" in response.json()["detail"]


def test_predict_of_reading_n_uses_the_n_minus_1_stored_readings(
    api: ModuleType, client: TestClient
) -> None:
    # GIVEN a vehicle whose first 11 readings are stored (as the stream stores them)
    records = history(12)
    streamed = client.post("/predict/batch", json={"records": records}).json()["predictions"]
    past = api.app.state.past
    from evpm.telemetry import TelemetryRecord, to_matrix

    stored = [TelemetryRecord.model_validate(r) for r in records[:11]]
    for prediction, record, row in zip(streamed, stored, to_matrix(stored), strict=False):
        past.store(record.vehicle_id, prediction["ts"], row)
    # WHEN reading 12 alone is sent to /predict
    body = client.post("/predict", json=records[11]).json()
    # THEN it equals the stream's prediction of it, and says which stored readings it used
    want = streamed[11]
    for field in ("anomaly_score", "rul_hours", "rul_low_hours", "rul_high_hours"):
        assert body[field] == pytest.approx(want[field], abs=1e-9), field
    for mode, p in want["failure_probabilities"].items():
        assert body["failure_probabilities"][mode] == pytest.approx(p, abs=1e-9), mode
    assert body["history"] == {
        "readings": 11,
        "first_ts": streamed[0]["ts"],
        "last_ts": streamed[10]["ts"],
    }
    # AND a vehicle with nothing stored is scored as a first reading, and says so
    alone = client.post("/predict", json={**records[11], "vehicle_id": "EV-0999"}).json()
    assert alone["history"] == {"readings": 0, "first_ts": None, "last_ts": None}
    outputs = ("anomaly_score", "rul_hours", "failure_probabilities")
    assert [alone[f] for f in outputs] != [body[f] for f in outputs]


def test_batch_reports_the_stored_history_per_vehicle(api: ModuleType, client: TestClient) -> None:
    records = history(6)
    body = client.post("/predict/batch", json={"records": records[3:]}).json()
    assert body["history"] == {"EV-0042": {"readings": 0, "first_ts": None, "last_ts": None}}
