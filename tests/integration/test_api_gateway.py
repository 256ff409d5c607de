"""The deployed API through the emulated API Gateway: keys enforced, rules-v1 served, 422s."""

from __future__ import annotations

import json

import httpx

from evpm.telemetry import EXAMPLE_RECORD
from tests.integration.conftest import System

# The schema's documented example (a nominal vehicle) under this suite's own id.
RECORD = {**EXAMPLE_RECORD, "vehicle_id": "EV-API-0001", "timestamp": "2026-03-01T12:00:00Z"}


def test_health_needs_no_key(system: System) -> None:
    response = httpx.get(f"{system.api_url}/health", timeout=30)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    # status --json's stack outputs give the address that works here, not AWS's hostname
    assert system.info["stacks"]["ApiUrl"] == system.api_url


def test_predict_without_key_is_forbidden(system: System) -> None:
    response = httpx.post(f"{system.api_url}/predict", json=RECORD, timeout=30)
    assert response.status_code == 403


def test_predict_with_key_names_rules_v1(system: System) -> None:
    response = httpx.post(f"{system.api_url}/predict", json=RECORD, timeout=30,
                          headers={"x-api-key": system.keys["fleet-service"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["vehicle_id"] == "EV-API-0001"
    assert "rules-v1" in json.dumps(body["model_versions"])


def test_malformed_body_names_the_field(system: System) -> None:
    bad = dict(RECORD, Battery_Temperature="hot", SoC=250.0)
    bad.pop("SoH")
    response = httpx.post(f"{system.api_url}/predict", json=bad, timeout=30,
                          headers={"x-api-key": system.keys["fleet-service"]})
    assert response.status_code == 422
    text = response.text
    for field in ("Battery_Temperature", "SoC", "SoH"):
        assert field in text, f"{field} not named in {text}"


def test_batch_over_limit_is_rejected(system: System) -> None:
    response = httpx.post(f"{system.api_url}/predict/batch", timeout=60,
                          json={"records": [RECORD] * 501},
                          headers={"x-api-key": system.keys["fleet-service"]})
    assert response.status_code == 422
    assert "500" in response.text
