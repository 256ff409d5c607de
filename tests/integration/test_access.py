"""Roles through the emulated API Gateway: keys authenticate, the function decides the role.

API Gateway refuses a request without a planned key (403) before the function runs; with a
key, the function reads the key's ``evpm:role`` tag and refuses what the role may not do (403
with a body naming the role and the permission). ``evpm keys create`` / ``revoke`` change who
gets in without a redeploy.
"""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest

from tests.integration.conftest import System, evpm
from tests.integration.test_api_gateway import RECORD

# free-standing: /predict stores nothing, so no prediction answers this reading
FEEDBACK = {
    "vehicle_id": "EV-ACC-0001", "ts": "2026-03-01T12:00:00Z", "rul_hours": 12.0,
    "free_standing": True,
}
ROUTES = [
    ("GET", "/models", None),
    ("GET", "/vehicles/EV-ACC-0001/predictions", None),
    ("POST", "/predict", RECORD),
    ("POST", "/predict/batch", {"records": [RECORD]}),
    ("POST", "/feedback", FEEDBACK),
    ("POST", "/models/ev-classifier/promote", None),
    ("POST", "/models/ev-classifier/rollback", None),
]
# /docs, /redoc and /openapi.json are open on purpose: test_api_docs_browser checks them.


def _call(system: System, method: str, path: str, body=None, key: str | None = None):
    headers = {"x-api-key": key} if key else {}
    return httpx.request(method, f"{system.api_url}{path}", json=body, headers=headers, timeout=30)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_but_health_is_403_without_a_key(system: System, method, path, body):
    assert _call(system, method, path, body).status_code == 403
    assert _call(system, "GET", "/health").status_code == 200


def test_viewer_reads_but_cannot_predict_or_promote(system: System) -> None:
    key = system.keys["viewer"]
    models = _call(system, "GET", "/models", key=key)
    assert models.status_code == 200, models.text
    # make up trained and pinned version 1 of the three models; the rules still serve too
    assert models.json()["serving"] == {
        "health": "rules-v1", "ev-anomaly": "1", "ev-classifier": "1", "ev-rul": "1",
    }
    page = _call(system, "GET", "/vehicles/EV-ACC-0001/predictions?limit=5", key=key)
    assert page.status_code == 200 and page.json()["vehicle_id"] == "EV-ACC-0001"
    predict = _call(system, "POST", "/predict", RECORD, key=key)
    assert predict.status_code == 403
    assert predict.json()["role"] == "viewer" and predict.json()["permission"] == "predict"
    promote = _call(system, "POST", "/models/ev-classifier/promote", key=key)
    assert promote.status_code == 403, promote.text
    assert promote.json() == {
        "detail": "role 'viewer' lacks permission 'models:promote' (needs role ml-admin)",
        "role": "viewer",
        "permission": "models:promote",
    }


def test_fleet_service_predicts_and_reports_but_cannot_roll_back(system: System) -> None:
    key = system.keys["fleet-service"]
    assert _call(system, "POST", "/predict", RECORD, key=key).status_code == 200
    feedback = _call(system, "POST", "/feedback", FEEDBACK, key=key)
    assert feedback.status_code == 201, feedback.text
    label = system.client("dynamodb").get_item(
        TableName="evpm-labels",
        Key={"vehicle_id": {"S": "EV-ACC-0001"}, "ts": {"S": "2026-03-01T12:00:00.000000Z"}},
    )
    assert label["Item"]["rul_hours"] == {"N": "12.0"}
    rollback = _call(system, "POST", "/models/ev-classifier/rollback", key=key)
    assert rollback.status_code == 403
    assert rollback.json()["role"] == "fleet-service"


def test_ml_admin_reaches_the_admin_routes(system: System) -> None:
    key = system.keys["ml-admin"]
    # Promoting the champion again and rolling back with no previous version are refused
    # with the reason (409): the routes are reached, and nothing moves.
    promote = _call(system, "POST", "/models/ev-classifier/promote", {"version": 1}, key=key)
    assert promote.status_code == 409, promote.text
    assert promote.json()["detail"] == "ev-classifier version 1 is already the champion"
    rollback = _call(system, "POST", "/models/ev-classifier/rollback", key=key)
    assert rollback.status_code == 409, rollback.text
    assert "no 'previous' version" in rollback.json()["detail"]


def _until(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_created_key_works_and_revoked_key_is_refused(system: System) -> None:
    # GIVEN a new fleet-service key made with the CLI
    name = f"it-{uuid.uuid4().hex[:8]}"
    created = json.loads(evpm("keys", "create", "--role", "fleet-service", "--name", name,
                              "--json").stdout)
    assert created["role"] == "fleet-service" and created["value"]
    listed = json.loads(evpm("keys", "list", "--json").stdout)
    assert any(k["name"] == name and k["role"] == "fleet-service" for k in listed)
    # WHEN it is used, THEN it may predict (and nothing more)
    ok = _until(lambda: _call(system, "POST", "/predict", RECORD, key=created["value"])
                .status_code == 200)
    assert ok, "a freshly created key was not accepted"
    rollback = _call(system, "POST", "/models/ev-rul/rollback", key=created["value"])
    assert rollback.status_code == 403 and rollback.json()["role"] == "fleet-service"
    # WHEN it is revoked by name, THEN API Gateway refuses it
    revoked = json.loads(evpm("keys", "revoke", name).stdout)
    assert revoked["enabled"] is False and revoked["removed_from"] == ["evpm-dev"]
    refused = _until(lambda: _call(system, "POST", "/predict", RECORD, key=created["value"])
                     .status_code == 403)
    assert refused, "a revoked key was still accepted"
