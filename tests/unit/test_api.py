"""functions/api: routes through FastAPI's TestClient and through Mangum with API Gateway events."""

from __future__ import annotations

import json
import statistics
import time
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.conftest import load_event, load_function
from tests.unit.fakes import FakeGateway, FakeRoles, InMemoryLabels, offline_models


@pytest.fixture
def api(monkeypatch) -> ModuleType:
    monkeypatch.setenv("PREDICTIONS_TABLE", "evpm-predictions")
    monkeypatch.setenv("LABELS_TABLE", "evpm-labels")
    module = load_function("api")
    # The sample gateway event carries key id "key123"; make it a fleet-service key.
    module.app.state.roles = FakeRoles({"key123": "fleet-service", "key-fleet": "fleet-service"})
    module.app.state.labels = InMemoryLabels()
    offline_models(module.app)
    return module


@pytest.fixture
def client(api) -> TestClient:
    """In-process client whose requests arrive as the fleet-service key through the gateway."""
    return TestClient(FakeGateway(api.app), headers={"x-api-key": "key-fleet"})


def _gateway(method: str, path: str, body: Any = None) -> dict[str, Any]:
    """The sample REST proxy event (stage v1) re-aimed at another route."""
    event = load_event("apigw_rest_predict.json")
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["path"] = path
    event["requestContext"]["path"] = f"/v1{path}"
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["body"] = None if body is None else json.dumps(body)
    return event


def test_health_names_version_and_models(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": "0.1.0", "models": {"health": "rules-v1"}}


def test_predict_returns_the_prediction_and_its_model(client, make_payload):
    response = client.post("/predict", json=make_payload(timestamp="2024-05-01T14:00:00+02:00"))
    assert response.status_code == 200
    body = response.json()
    assert body["vehicle_id"] == "EV-0042"
    assert body["ts"] == "2024-05-01T12:00:00.000000Z"
    assert body["status"] == "ok" and body["health_score"] == 100.0
    assert body["model_versions"] == {"health": "rules-v1"}


def test_predict_reports_findings(client, make_payload):
    body = client.post("/predict", json=make_payload(Brake_Pad_Wear=90.0)).json()
    assert body["status"] == "critical" and body["failure_mode"] == "brake_wear"
    assert body["findings"][0]["rule_id"] == "BRK-PAD"


def test_out_of_range_value_is_a_422_naming_field_and_range(client, make_payload):
    response = client.post("/predict", json=make_payload(SoC=130.0, Battery_Temperature=-80))
    assert response.status_code == 422
    detail = {tuple(e["loc"]): e["msg"] for e in response.json()["detail"]}
    assert detail == {
        ("body", "SoC"): "must be between 0 and 100 % (got 130.0)",
        ("body", "Battery_Temperature"): "must be between -40 and 150 °C (got -80.0)",
    }


def test_missing_wrong_and_extra_fields_are_named(client, make_payload):
    payload = make_payload(Battery_Voltage="high", Failure_Probability=0.9)
    del payload["SoH"]
    response = client.post("/predict", json=payload)
    assert response.status_code == 422
    locs = {tuple(e["loc"]) for e in response.json()["detail"]}
    assert locs == {("body", "SoH"), ("body", "Battery_Voltage"), ("body", "Failure_Probability")}


def test_nan_in_body_is_a_422_not_a_crash(client, make_payload):
    text = json.dumps(make_payload()).replace('"SoC": 76.5', '"SoC": NaN')
    response = client.post("/predict", content=text, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "SoC"]


def test_batch_scores_in_order_and_names_models(client, make_payload):
    records = [make_payload(vehicle_id=f"EV-{i}", SoH=65.0 if i == 1 else 95.0) for i in range(3)]
    response = client.post("/predict/batch", json={"records": records})
    assert response.status_code == 200
    body = response.json()
    assert [p["vehicle_id"] for p in body["predictions"]] == ["EV-0", "EV-1", "EV-2"]
    assert [p["status"] for p in body["predictions"]] == ["ok", "critical", "ok"]
    assert body["model_versions"] == {"health": "rules-v1"}


def test_batch_limit_is_500(client, make_payload):
    assert (
        client.post("/predict/batch", json={"records": [make_payload()] * 500}).status_code == 200
    )
    response = client.post("/predict/batch", json={"records": [make_payload()] * 501})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "records"]
    assert "at most 500" in error["msg"]
    assert client.post("/predict/batch", json={"records": []}).status_code == 422


def test_batch_errors_name_the_record_and_field(client, make_payload):
    records = [make_payload(), make_payload(Tire_Pressure=-3)]
    response = client.post("/predict/batch", json={"records": records})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "records", 1, "Tire_Pressure"]


def test_openapi_documents_routes_ranges_and_examples(client):
    schema = client.get("/openapi.json").json()
    assert {"/health", "/predict", "/predict/batch"} <= set(schema["paths"])
    record = schema["components"]["schemas"]["TelemetryRecord"]
    assert record["examples"][0]["vehicle_id"] == "EV-0042"
    assert (
        record["properties"]["SoC"] | {"minimum": 0, "maximum": 100} == record["properties"]["SoC"]
    )
    assert schema["components"]["schemas"]["Prediction"]["examples"]
    assert client.get("/docs").status_code == 200


# --- through Mangum, as API Gateway (REST, stage v1) invokes the function ---------------------


def test_gateway_predict_returns_200_naming_rules_v1(api, make_payload, lambda_context):
    response = api.handler(load_event("apigw_rest_predict.json"), lambda_context)
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["model_versions"] == {"health": "rules-v1"}
    assert body["vehicle_id"] == "EV-0042"


def test_gateway_bad_body_is_a_422_naming_the_field(api, make_payload, lambda_context):
    response = api.handler(_gateway("POST", "/predict", make_payload(SoH=101)), lambda_context)
    assert response["statusCode"] == 422
    [error] = json.loads(response["body"])["detail"]
    assert error["loc"] == ["body", "SoH"] and "between 0 and 100 %" in error["msg"]


def test_gateway_batch_limit(api, make_payload, lambda_context):
    event = _gateway("POST", "/predict/batch", {"records": [make_payload()] * 501})
    response = api.handler(event, lambda_context)
    assert response["statusCode"] == 422
    assert "at most 500" in response["body"]


def test_gateway_health(api, lambda_context):
    response = api.handler(_gateway("GET", "/health"), lambda_context)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["models"] == {"health": "rules-v1"}


def test_docs_work_behind_the_stage_prefix(api, lambda_context):
    # GIVEN API Gateway strips the stage from `path` but keeps it in requestContext.path
    docs = api.handler(_gateway("GET", "/docs"), lambda_context)
    assert docs["statusCode"] == 200
    # THEN the page's URLs are relative (they work under /v1 and under the emulator's prefix)
    assert 'src="docs-assets/swagger-ui-bundle.js"' in docs["body"]
    assert "/v1/" not in docs["body"]
    asset = api.handler(_gateway("GET", "/docs-assets/swagger-ui.css"), lambda_context)
    assert asset["statusCode"] == 200 and asset["headers"]["content-type"].startswith("text/css")
    schema = api.handler(_gateway("GET", "/openapi.json"), lambda_context)
    assert schema["statusCode"] == 200
    assert json.loads(schema["body"])["servers"] == [{"url": "/v1"}]


def test_predict_latency(client, make_payload):
    payload = make_payload()
    for _ in range(20):
        client.post("/predict", json=payload)
    samples = []
    for _ in range(300):
        start = time.perf_counter()
        assert client.post("/predict", json=payload).status_code == 200
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p50, p95 = statistics.median(samples), samples[int(len(samples) * 0.95)]
    print(f"\n[measure] POST /predict via TestClient: p50 {p50:.2f} ms, p95 {p95:.2f} ms")
    assert p50 < 100
