"""functions/api/request_metrics: ApiRequests and ApiLatency per invocation, by route template.

Requests go through the Lambda handler as API Gateway events (Mangum, then the handler's one
``@metrics.log_metrics`` flush), and the EMF documents it prints are read back.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from tests.unit.conftest import FakeLambdaContext, load_event, load_function
from tests.unit.fakes import FakeRoles, InMemoryLabels, offline_models

DIMENSION_SETS = [["service"], ["service", "status_class"], ["service", "route", "status_class"]]


class _NoPredictions:
    """A PredictionReader with nothing stored."""

    def latest(self, vehicle_id: str, *, limit: int, after_ts: str | None) -> Any:
        return load_function("api", "stores").Page(predictions=[], last_ts=None)


@pytest.fixture
def api(monkeypatch) -> ModuleType:
    monkeypatch.setenv("PREDICTIONS_TABLE", "evpm-predictions")
    monkeypatch.setenv("LABELS_TABLE", "evpm-labels")
    module = load_function("api")
    module.app.state.roles = FakeRoles({"key123": "fleet-service"})
    module.app.state.labels = InMemoryLabels()
    module.app.state.predictions = _NoPredictions()
    offline_models(module.app)
    module.metrics.clear_metrics()  # powertools shares the metric set between module loads
    return module


def _event(method: str, path: str, body: Any = None) -> dict[str, Any]:
    event = load_event("apigw_rest_predict.json")
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    event["path"] = path
    event["requestContext"]["path"] = f"/v1{path}"
    event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["body"] = None if body is None else json.dumps(body)
    return event


def _invoke(api: ModuleType, capsys, method: str, path: str, body: Any = None):
    """One invocation; its response and the EMF documents it printed."""
    capsys.readouterr()
    response = api.handler(_event(method, path, body), FakeLambdaContext(function_name="evpm-api"))
    out = capsys.readouterr().out
    return response, [json.loads(line) for line in out.splitlines() if '"_aws"' in line]


def test_one_request_is_one_flush_with_route_template_and_status_class(api, capsys) -> None:
    # WHEN a vehicle's predictions are read through API Gateway
    response, emf = _invoke(api, capsys, "GET", "/vehicles/EV-0042/predictions")
    # THEN one EMF document leaves, with the request counted once and timed
    assert response["statusCode"] == 200
    [doc] = emf
    [directive] = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "evpm"
    assert directive["Dimensions"] == DIMENSION_SETS
    assert doc["ApiRequests"] == [1.0]
    [latency] = doc["ApiLatency"]
    assert 0 < latency < 10_000
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units["ApiRequests"] == "Count" and units["ApiLatency"] == "Milliseconds"
    # AND the route is the template, never the raw path with the vehicle id
    assert doc["route"] == "/vehicles/{vehicle_id}/predictions"
    assert doc["status_class"] == "2xx" and doc["service"] == "evpm-api"
    assert "EV-0042" not in json.dumps({k: v for k, v in doc.items() if k != "_aws"})
    # AND the handler's own counts are in the same flush, still under {service}
    assert doc["ModelLoadFailures"] == [0.0] and doc["BoosterFallback"] == [0.0]


@pytest.mark.parametrize(
    ("method", "path", "body", "route", "klass"),
    [
        ("GET", "/health", None, "/health", "2xx"),
        ("POST", "/predict", {"vehicle_id": "EV-1"}, "/predict", "4xx"),  # 422
        ("GET", "/no/such/route", None, "unmatched", "4xx"),  # 404
        ("DELETE", "/predict", None, "/predict", "4xx"),  # 405: the path matched
        ("GET", "/models/ev-rul/importance", None, "/models/{name}/importance", "4xx"),
        ("POST", "/alerts/webhook", {}, "/alerts/webhook", "4xx"),  # 401: no bearer token
    ],
)
def test_each_answer_is_counted_under_its_template_and_class(
    api, capsys, method, path, body, route, klass
) -> None:
    response, [doc] = _invoke(api, capsys, method, path, body)
    assert f"{response['statusCode'] // 100}xx" == klass
    assert (doc["route"], doc["status_class"]) == (route, klass)
    assert doc["ApiRequests"] == [1.0]


def test_an_unhandled_error_is_a_5xx_with_its_time(api, capsys) -> None:
    # GIVEN a store that breaks in a way no handler knows
    class Broken:
        def latest(self, *_args: Any, **_kwargs: Any) -> Any:
            raise RuntimeError("boom")

    api.app.state.predictions = Broken()
    # WHEN it is called
    response, [doc] = _invoke(api, capsys, "GET", "/vehicles/EV-0042/predictions")
    # THEN the caller gets a 500 and the metric says 5xx for the route
    assert response["statusCode"] == 500
    assert (doc["route"], doc["status_class"]) == ("/vehicles/{vehicle_id}/predictions", "5xx")
    assert doc["ApiLatency"][0] > 0


def test_storage_outage_503_is_a_5xx(api, capsys) -> None:
    from botocore.exceptions import ClientError

    class Throttled:
        def latest(self, *_args: Any, **_kwargs: Any) -> Any:
            raise ClientError({"Error": {"Code": "ThrottlingException"}}, "Query")

    api.app.state.predictions = Throttled()
    response, [doc] = _invoke(api, capsys, "GET", "/vehicles/EV-0042/predictions")
    assert response["statusCode"] == 503
    assert doc["status_class"] == "5xx"


def test_the_canary_invocation_counts_no_request(api, capsys) -> None:
    # The lifecycle's canary calls the function directly, not through HTTP.
    capsys.readouterr()
    api.handler({"evpm_canary": {"records": []}}, FakeLambdaContext(function_name="evpm-api"))
    docs = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    assert all("ApiRequests" not in d for d in docs)


def test_requests_before_a_flush_never_share_one(api, capsys) -> None:
    # GIVEN the app outside Lambda (no handler flush between requests)
    from fastapi.testclient import TestClient

    client = TestClient(api.app)
    capsys.readouterr()
    # WHEN two requests of different routes come
    client.get("/health")
    client.get("/no/such/route")
    api.metrics.flush_metrics()
    docs = [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]
    # THEN each one's metrics left in its own document
    assert [(d["route"], d["ApiRequests"]) for d in docs] == [
        ("/health", [1.0]),
        ("unmatched", [1.0]),
    ]


@pytest.mark.parametrize(
    ("status", "klass"), [(200, "2xx"), (204, "2xx"), (302, "3xx"), (404, "4xx"), (503, "5xx"),
                          (99, "5xx"), (600, "5xx")]
)
def test_status_class(status: int, klass: str) -> None:
    metrics_module = load_function("api", "request_metrics")
    assert metrics_module.status_class(status) == klass
