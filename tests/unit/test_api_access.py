"""functions/api: every route and role, 401/403 bodies, predictions pages, feedback, role lookup.

Tables are moto's (``mock_aws``); the caller arrives through :class:`FakeGateway`, which plays
API Gateway and turns the ``x-api-key`` header into ``requestContext.identity.apiKeyId``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from evpm.health import FAILURE_MODES
from evpm.predictions import Prediction, to_item
from tests.unit.conftest import NOMINAL, load_event, load_function
from tests.unit.fakes import FakeGateway, FakeRoles, ScriptedApiGatewayClient, offline_models

PREDICTIONS, LABELS = "evpm-predictions", "evpm-labels"
KEYS = {"k-viewer": "viewer", "k-fleet": "fleet-service", "k-admin": "ml-admin", "k-none": None}
FEEDBACK = {"vehicle_id": "EV-0042", "ts": "2024-05-01T12:00:00Z", "failure_mode": "brake_wear"}

# (method, path, body, roles that may call it, status when allowed)
ROUTES: list[tuple[str, str, Any, set[str], int]] = [
    ("GET", "/models", None, {"viewer", "fleet-service", "ml-admin"}, 200),
    ("GET", "/vehicles/EV-0042/predictions", None, {"viewer", "fleet-service", "ml-admin"}, 200),
    ("POST", "/predict", NOMINAL, {"fleet-service", "ml-admin"}, 200),
    ("POST", "/predict/batch", {"records": [NOMINAL]}, {"fleet-service", "ml-admin"}, 200),
    # free-standing: the matrix is about roles, not about whether the reading was scored
    ("POST", "/feedback", {**FEEDBACK, "free_standing": True}, {"fleet-service", "ml-admin"}, 201),
    ("POST", "/models/ev-classifier/promote", {"version": 1}, {"ml-admin"}, 200),
    ("POST", "/models/ev-classifier/rollback", None, {"ml-admin"}, 200),
]


def _table(client: Any, name: str) -> None:
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "vehicle_id", "KeyType": "HASH"},
            {"AttributeName": "ts", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "vehicle_id", "AttributeType": "S"},
            {"AttributeName": "ts", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def api(aws_env, monkeypatch) -> Iterator[ModuleType]:
    """The API module with moto tables behind it and a dict of key id → role."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        _table(dynamodb, PREDICTIONS)
        _table(dynamodb, LABELS)
        monkeypatch.setenv("PREDICTIONS_TABLE", PREDICTIONS)
        monkeypatch.setenv("LABELS_TABLE", LABELS)
        module = load_function("api")
        module.app.state.roles = FakeRoles(KEYS)
        offline_models(module.app)
        yield module


@pytest.fixture
def client(api) -> TestClient:
    return TestClient(FakeGateway(api.app))


def _call(client: TestClient, method: str, path: str, body: Any, key: str | None):
    headers = {"x-api-key": key} if key else {}
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body", "allowed", "ok"), ROUTES)
@pytest.mark.parametrize("key", ["k-viewer", "k-fleet", "k-admin"])
def test_route_role_matrix(client, method, path, body, allowed, ok, key):
    role = KEYS[key]
    response = _call(client, method, path, body, key)
    if role in allowed:
        assert response.status_code == ok, response.text
    else:
        assert response.status_code == 403, response.text
        body = response.json()
        assert body["role"] == role
        assert body["permission"] and body["permission"] in body["detail"]


@pytest.mark.parametrize(("method", "path", "body", "allowed", "ok"), ROUTES)
def test_every_protected_route_is_401_without_identity(client, method, path, body, allowed, ok):
    response = _call(client, method, path, body, None)
    assert response.status_code == 401
    assert "x-api-key" in response.json()["detail"]
    assert response.headers["www-authenticate"] == "ApiKey"


def test_key_without_role_tag_is_403(client):
    response = _call(client, "GET", "/models", None, "k-none")
    assert response.status_code == 403
    assert "evpm:role" in response.json()["detail"]


def test_the_refusals_the_issue_names(client):
    viewer_predict = _call(client, "POST", "/predict", NOMINAL, "k-viewer")
    assert viewer_predict.status_code == 403
    assert viewer_predict.json() == {
        "detail": "role 'viewer' lacks permission 'predict' (needs role fleet-service, ml-admin)",
        "role": "viewer",
        "permission": "predict",
    }
    assert _call(client, "POST", "/models/ev-rul/promote", None, "k-viewer").status_code == 403
    assert _call(client, "POST", "/models/ev-rul/rollback", None, "k-fleet").status_code == 403
    admin = _call(client, "POST", "/models/ev-rul/rollback", None, "k-admin")
    assert admin.status_code == 409, admin.text
    assert admin.json()["detail"] == (
        "ev-rul has no 'previous' version to roll back to; name the version "
        "(`to` in the API's body, --to on the command line)"
    )


def test_health_and_docs_stay_open(client):
    assert client.get("/health").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_models_names_what_serves(client):
    response = _call(client, "GET", "/models", None, "k-viewer")
    body = response.json()
    # Nothing pinned: the rules serve alone; the registry lists what is registered.
    assert body["serving"] == {"health": "rules-v1"} and body["pins"] == {}
    [classifier] = [m for m in body["registry"] if m["name"] == "ev-classifier"]
    assert classifier["aliases"] == {"champion": 2, "previous": 1}
    assert [v["version"] for v in classifier["versions"]] == [2, 1]
    assert classifier["versions"][0]["aliases"] == ["champion"]


def test_promote_and_rollback_move_aliases_and_pins(client):
    promoted = _call(client, "POST", "/models/ev-classifier/promote", {"version": 1}, "k-admin")
    assert promoted.status_code == 200, promoted.text
    assert promoted.json() == {
        "name": "ev-classifier", "champion": 1, "previous": 2,
        "pins_before": {}, "pins": {"ev-classifier": 1},
    }  # fmt: skip
    again = _call(client, "POST", "/models/ev-classifier/promote", {"version": 1}, "k-admin")
    assert again.status_code == 409 and "already the champion" in again.json()["detail"]
    missing = _call(client, "POST", "/models/ev-classifier/promote", {"version": 9}, "k-admin")
    assert (
        missing.status_code == 404 and missing.json()["detail"] == "ev-classifier has no version 9"
    )
    back = _call(client, "POST", "/models/ev-classifier/rollback", None, "k-admin")
    assert back.json()["champion"] == 2 and back.json()["pins"] == {"ev-classifier": 2}
    to = _call(client, "POST", "/models/ev-classifier/rollback", {"to": 1}, "k-admin")
    assert to.json()["champion"] == 1


def test_gateway_event_without_api_key_id_is_401(api, lambda_context):
    # GIVEN a real-shaped gateway event whose identity carries no key id
    event = load_event("apigw_rest_predict.json")
    del event["requestContext"]["identity"]["apiKeyId"]
    response = api.handler(event, lambda_context)
    assert response["statusCode"] == 401
    # AND with the key id, the role lookup decides
    api.app.state.roles = FakeRoles({"key123": "viewer"})
    response = api.handler(load_event("apigw_rest_predict.json"), lambda_context)
    assert response["statusCode"] == 403
    assert json.loads(response["body"])["role"] == "viewer"


# --- GET /vehicles/{id}/predictions -----------------------------------------------------------


def _store(
    n: int, vehicle: str = "EV-0042", start: datetime = datetime(2024, 5, 1, 12, tzinfo=UTC)
) -> list[str]:
    table = boto3.resource("dynamodb").Table(PREDICTIONS)
    stamps = []
    for i in range(n):
        ts = (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        p = Prediction(
            vehicle_id=vehicle,
            ts=ts,
            record_id="r" * 32,
            status="ok",
            health_score=100.0,
            failure_mode="none",
            findings=[],
            model_versions={"health": "rules-v1"},
            scored_at=start,
        )
        table.put_item(Item=to_item(p))
        stamps.append(ts)
    return stamps


def test_predictions_latest_first_in_pages_with_an_opaque_cursor(client):
    # GIVEN 5 stored predictions for one vehicle and 1 for another
    stamps = _store(5)
    _store(1, vehicle="EV-0099")
    # WHEN a viewer pages through them 2 at a time
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"next": cursor} if cursor else {})}
        response = client.get(
            "/vehicles/EV-0042/predictions", params=params, headers={"x-api-key": "k-viewer"}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        seen += [p["ts"] for p in body["predictions"]]
        cursor = body["next"]
        if cursor is None:
            break
    # THEN every prediction of that vehicle comes once, newest first, in 3 pages
    assert seen == sorted(stamps, reverse=True)
    assert pages == 3


def test_unknown_vehicle_is_an_empty_page(client):
    response = client.get("/vehicles/EV-NONE/predictions", headers={"x-api-key": "k-viewer"})
    assert response.json() == {"vehicle_id": "EV-NONE", "predictions": [], "next": None}


def test_foreign_or_garbage_cursor_is_400(client):
    _store(3)
    first = client.get(
        "/vehicles/EV-0042/predictions", params={"limit": 1}, headers={"x-api-key": "k-viewer"}
    ).json()
    other = client.get(
        "/vehicles/EV-0099/predictions",
        params={"next": first["next"]},
        headers={"x-api-key": "k-viewer"},
    )
    assert other.status_code == 400 and "cursor" in other.json()["detail"]
    garbage = client.get(
        "/vehicles/EV-0042/predictions", params={"next": "%%%"}, headers={"x-api-key": "k-viewer"}
    )
    assert garbage.status_code == 400


@pytest.mark.parametrize("limit", [0, 101, "many"])
def test_limit_is_bounded(client, limit):
    response = client.get(
        "/vehicles/EV-0042/predictions", params={"limit": limit}, headers={"x-api-key": "k-viewer"}
    )
    assert response.status_code == 422


# --- POST /feedback ------------------------------------------------------------------------------


def _label(vehicle_id: str = "EV-0042", ts: str = "2024-05-01T12:00:00.000000Z") -> Any:
    key = {"vehicle_id": vehicle_id, "ts": ts}
    return boto3.resource("dynamodb").Table(LABELS).get_item(Key=key).get("Item")


def test_feedback_is_stored_under_the_reading_key_with_the_reporter(client):
    _store(1)  # the reading at 2024-05-01T12:00Z was scored
    body = {**FEEDBACK, "ts": "2024-05-01T14:00:00+02:00", "rul_hours": 36, "notes": "pads 2 mm"}
    response = client.post("/feedback", json=body, headers={"x-api-key": "k-fleet"})
    assert response.status_code == 201, response.text
    assert response.json()["ts"] == "2024-05-01T12:00:00.000000Z"
    assert response.json()["reports"] == 1 and response.json()["free_standing"] is False
    item = _label()
    assert item["failure_mode"] == "brake_wear" and item["rul_hours"] == 36
    assert item["reported_by"] == "k-fleet" and item["notes"] == "pads 2 mm"
    assert "free_standing" not in item
    [report] = item["reports"]
    assert report == {k: item[k] for k in report} and report["reported_by"] == "k-fleet"


def test_feedback_on_an_unscored_reading_is_404_naming_ts(client):
    # GIVEN a scored reading at 12:00 only
    _store(1)
    # WHEN feedback names the same vehicle a minute later (a reading never scored)
    body = {**FEEDBACK, "ts": "2024-05-01T12:01:00Z"}
    response = client.post("/feedback", json=body, headers={"x-api-key": "k-fleet"})
    # THEN it is refused like an unknown model version, naming the field, why, and the way out
    assert response.status_code == 404, response.text
    assert response.json() == {
        "detail": "ts: no scored reading of EV-0042 at 2024-05-01T12:01:00.000000Z; "
        "set free_standing=true to record an outcome that answers no prediction"
    }
    assert _label(ts="2024-05-01T12:01:00.000000Z") is None  # nothing stored


def test_free_standing_feedback_needs_no_scored_reading(client):
    body = {**FEEDBACK, "free_standing": True}
    response = client.post("/feedback", json=body, headers={"x-api-key": "k-fleet"})
    assert response.status_code == 201, response.text
    assert response.json()["free_standing"] is True and response.json()["reports"] == 1
    item = _label()
    assert item["free_standing"] is True and item["reports"][0]["free_standing"] is True


def test_a_second_report_is_kept_beside_the_first(client):
    # GIVEN a scored reading, reported on by the fleet service (a RUL and a note)
    _store(1)
    first = {**FEEDBACK, "failure_mode": None, "rul_hours": 36, "notes": "pads 2 mm"}
    one = client.post("/feedback", json=first, headers={"x-api-key": "k-fleet"})
    assert one.status_code == 201 and one.json()["reports"] == 1, one.text
    # WHEN an admin reports on the same reading (the failure mode only)
    two = client.post("/feedback", json=FEEDBACK, headers={"x-api-key": "k-admin"})
    # THEN both reports are stored, oldest first, each with who and when
    assert two.status_code == 201, two.text
    assert two.json()["reports"] == 2 and two.json()["reported_by"] == "k-admin"
    item = _label()
    older, newer = item["reports"]
    assert (older["reported_by"], newer["reported_by"]) == ("k-fleet", "k-admin")
    assert older["received_at"] < newer["received_at"] == two.json()["received_at"]
    assert older["rul_hours"] == 36 and older["notes"] == "pads 2 mm"
    assert newer["failure_mode"] == "brake_wear" and "rul_hours" not in newer
    # AND the top level is the latest report alone: what it left out is not carried over
    assert item["reported_by"] == "k-admin" and item["failure_mode"] == "brake_wear"
    assert "rul_hours" not in item and "notes" not in item


def test_feedback_without_an_observation_is_422(client):
    body = {"vehicle_id": "EV-0042", "ts": "2024-05-01T12:00:00Z"}
    response = client.post("/feedback", json=body, headers={"x-api-key": "k-fleet"})
    assert response.status_code == 422
    assert "failure_mode, rul_hours or both" in response.text


@pytest.mark.parametrize("mode", FAILURE_MODES)
def test_feedback_takes_every_class_the_classifier_predicts(client, mode):
    _store(1, start=datetime(2024, 5, 2, 8, tzinfo=UTC))
    body = {**FEEDBACK, "ts": "2024-05-02T08:00:00Z", "failure_mode": mode}
    response = client.post("/feedback", json=body, headers={"x-api-key": "k-fleet"})
    assert response.status_code == 201, response.text
    assert response.json()["failure_mode"] == mode
    assert _label(ts="2024-05-02T08:00:00.000000Z")["failure_mode"] == mode


def test_an_unknown_failure_mode_is_422_naming_the_valid_ones(client):
    _store(1)  # scored: the refusal is the class's, not the reading's
    body = {**FEEDBACK, "failure_mode": "flux_capacitor"}
    response = client.post("/feedback", json=body, headers={"x-api-key": "k-fleet"})
    assert response.status_code == 422
    assert "failure_mode" in response.text
    for mode in FAILURE_MODES:
        assert f"'{mode}'" in response.text, (mode, response.text)


@pytest.mark.parametrize("store", ["labels", "predictions"])
def test_storage_failure_is_503_not_500(api, client, store):
    # the label write, or the check that the reading was scored
    _store(1)
    getattr(api.app.state, store).table_name = "no-such-table"
    response = client.post("/feedback", json=FEEDBACK, headers={"x-api-key": "k-fleet"})
    assert response.status_code == 503, response.text


def test_openapi_documents_the_feedback_refusal_and_the_report_count(client):
    schema = client.get("/openapi.json").json()
    feedback = schema["paths"]["/feedback"]["post"]
    refused = feedback["responses"]["404"]["content"]["application/json"]["example"]["detail"]
    assert refused.startswith("ts: no scored reading of") and "free_standing=true" in refused
    schemas = schema["components"]["schemas"]
    free_standing = schemas["Feedback"]["properties"]["free_standing"]
    assert (
        free_standing["default"] is False
        and "answers no prediction" in free_standing["description"]
    )
    assert schemas["FeedbackResponse"]["examples"][0]["reports"] == 2
    assert "reports" in schemas["FeedbackResponse"]["required"]


def test_openapi_documents_new_routes_roles_and_examples(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert {
        "/models",
        "/feedback",
        "/vehicles/{vehicle_id}/predictions",
        "/models/{name}/promote",
        "/models/{name}/rollback",
    } <= set(paths)
    promote = paths["/models/{name}/promote"]["post"]
    assert promote["x-evpm-permission"] == "models:promote"
    assert {"401", "403", "404", "409", "503"} <= set(promote["responses"])
    assert schema["components"]["securitySchemes"]["APIKeyHeader"]["name"] == "x-api-key"
    assert schema["components"]["schemas"]["Feedback"]["examples"]
    assert "health" not in json.dumps(paths["/health"]["get"].get("security", []))


# --- role lookup (roles.py) -----------------------------------------------------------------------


def _roles_module() -> ModuleType:
    return load_function("api", "roles")


def test_resolver_reads_the_tag_and_caches_it_for_the_ttl():
    roles = _roles_module()
    client = ScriptedApiGatewayClient({"k1": {"evpm:role": "viewer"}, "k2": {"team": "x"}})
    now = [1000.0]
    resolver = roles.ApiKeyTagResolver(client=client, ttl_seconds=60, clock=lambda: now[0])
    assert resolver.role_of("k1") == "viewer"
    assert resolver.role_of("k1") == "viewer"
    assert client.calls == 1
    now[0] += 61
    assert resolver.role_of("k1") == "viewer"
    assert client.calls == 2
    assert resolver.role_of("k2") is None  # no role tag
    assert resolver.role_of("gone") is None  # deleted key


def test_resolver_failure_is_not_cached_and_becomes_503(api, client):
    # GIVEN API Gateway throttles GetApiKey (the app's own resolver class, as deployed)
    failing = ScriptedApiGatewayClient({}, error="TooManyRequestsException")
    api.app.state.roles = api.ApiKeyTagResolver(client=failing)
    # WHEN a caller comes twice
    first = client.get("/models", headers={"x-api-key": "k1"})
    second = client.get("/models", headers={"x-api-key": "k1"})
    # THEN both are a retryable 503 (not a 500, not a cached refusal) and both tried again
    assert (first.status_code, second.status_code) == (503, 503)
    assert first.headers["retry-after"] == "1"
    assert failing.calls == 2


def test_resolver_against_moto_api_gateway(aws_env):
    roles = _roles_module()
    with mock_aws():
        apigw = boto3.client("apigateway")
        key = apigw.create_api_key(name="alice", enabled=True, tags={"evpm:role": "ml-admin"})
        resolver = roles.ApiKeyTagResolver(client=apigw)
        assert resolver.role_of(key["id"]) == "ml-admin"
        assert resolver.role_of("nope") is None
