"""The real adapters behind the Protocols, on stub clients: what they ask and how they read
the answers (the browser test runs them against the emulator)."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from console.errors import NotFoundError, PermissionDeniedError, SourceUnavailableError
from console.evpm_api import EvpmApi
from console.fleet import ApiFleet, parse_explanation
from console.keys import ApiGatewayKeys
from console.lifecycle import RunRequest, StepFunctionsSource, trigger_of_name
from console.monitoring import HttpMonitoring
from console.registry import ApiRegistry
from evpm.past_readings import pack_reading
from evpm.telemetry import FEATURES

REPO = Path(__file__).resolve().parents[3]


class _Pages:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages

    def paginate(self, **_kwargs: Any) -> list[dict[str, Any]]:
        return self.pages


class StubSfn:
    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []

    def get_paginator(self, name: str) -> _Pages:
        if name == "list_state_machines":
            return _Pages(
                [
                    {
                        "stateMachines": [
                            {"name": "other", "stateMachineArn": "arn:x:stateMachine:other"},
                            {
                                "name": "evpm-model-lifecycle",
                                "stateMachineArn": "arn:aws:states:us-east-1:0:stateMachine:evpm-model-lifecycle",
                            },
                        ]
                    }
                ]
            )
        assert name == "list_executions"
        t = datetime(2026, 1, 1, tzinfo=UTC)
        return _Pages(
            [
                {
                    "executions": [
                        {
                            "name": f"ci-20260101T00000{i}-abcdef",
                            "executionArn": f"arn:e:{i}",
                            "status": "SUCCEEDED",
                            "startDate": t.replace(second=i),
                            "stopDate": t.replace(second=i + 1),
                        }
                        for i in range(3)
                    ]
                }
            ]
        )

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.started.append(kwargs)
        return {"executionArn": "arn:e:new"}


def test_executions_are_listed_newest_first_with_the_trigger_from_the_name() -> None:
    rows = StepFunctionsSource(StubSfn(), "evpm-model-lifecycle").executions()
    assert [r.name[-8:] for r in rows] == ["2-abcdef", "1-abcdef", "0-abcdef"]
    assert rows[0].trigger == "ci" and rows[0].duration_s() == 1.0
    assert trigger_of_name("make-up-20260101T000000-0a1b2c") == "make-up"
    assert trigger_of_name("some-other-name") is None


def test_an_absent_machine_is_said_plainly() -> None:
    with pytest.raises(SourceUnavailableError, match="no state machine named 'nope'"):
        StepFunctionsSource(StubSfn(), "nope").executions()


def test_start_sends_exactly_the_request_evpm_lifecycle_run_sends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from evpm_cli import lifecycle as cli_lifecycle

    cli_client = StubSfn()
    monkeypatch.setattr(cli_lifecycle, "client", lambda _cfg, _service: cli_client)
    monkeypatch.setattr(cli_lifecycle, "_arn", lambda _cfg: "arn:m")
    cli_lifecycle.start(None, models=("ev-rul",), trigger="console by dev-admin")  # type: ignore[arg-type]
    console_client = StubSfn()
    source = StepFunctionsSource(console_client, "evpm-model-lifecycle")
    name = source.start(RunRequest(models=("ev-rul",), trigger="console by dev-admin"))
    assert json.loads(console_client.started[0]["input"]) == json.loads(
        cli_client.started[0]["input"]
    )
    assert name.startswith("console-") and trigger_of_name(name) == "console"


class StubApiGateway:
    def get_paginator(self, name: str) -> _Pages:
        assert name == "get_api_keys"
        return _Pages(
            [
                {
                    "items": [
                        {
                            "id": "a",
                            "name": "evpm-dev-viewer",
                            "value": "v-1",
                            "enabled": True,
                            "tags": {"evpm:role": "viewer"},
                        },
                        {
                            "id": "b",
                            "name": "odd",
                            "value": "v-2",
                            "enabled": True,
                            "tags": {"evpm:role": "root"},
                        },
                    ]
                }
            ]
        )


def test_a_key_is_found_by_its_value_with_its_role_tag() -> None:
    keys = ApiGatewayKeys(StubApiGateway())
    assert keys.find("v-1").model_dump() == {
        "id": "a",
        "name": "evpm-dev-viewer",
        "role": "viewer",
        "enabled": True,
    }
    assert keys.find("v-2").role is None
    assert keys.find("v-3") is None and keys.find("") is None


def _api(handler) -> EvpmApi:
    return EvpmApi("http://api/v1", transport=httpx.MockTransport(handler))


def test_predictions_are_read_page_by_page_up_to_the_limit() -> None:
    calls: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(dict(request.url.params))
        assert request.headers["x-api-key"] == "k"
        start = int(request.url.params.get("next", "0"))
        items = [
            {
                "ts": f"2026-01-01T00:00:{59 - i:02d}.000000Z",
                "status": "ok",
                "health_score": 90,
                "failure_mode": "none",
                "rul_hours": 5.0,
            }
            for i in range(start, start + int(request.url.params["limit"]))
        ]
        return httpx.Response(
            200, json={"vehicle_id": "V", "predictions": items, "next": str(start + len(items))}
        )

    fleet = ApiFleet(_api(handler), None, predictions_table="p", alert_table="a")
    points = fleet.predictions("k", "V", 250)
    assert len(points) == 250 and [c["limit"] for c in calls] == ["100", "100", "50"]


def test_a_vehicle_without_predictions_is_not_found_and_a_403_is_denied() -> None:
    empty = _api(
        lambda r: httpx.Response(200, json={"vehicle_id": "V", "predictions": [], "next": None})
    )
    with pytest.raises(NotFoundError):
        ApiFleet(empty, None, predictions_table="p", alert_table="a").predictions("k", "V", 10)
    denied = _api(lambda r: httpx.Response(403, json={"detail": "role 'viewer' lacks"}))
    with pytest.raises(PermissionDeniedError, match="lacks"):
        denied.call("POST", "/models/ev-rul/promote", "k", json={"version": 2})


class StubDynamo:
    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def query(self, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["ScanIndexForward"] is False and kwargs["Limit"] == 1
        return {
            "Items": [{"ts": {"S": "2026-01-01T00:00:00.000000Z"}, "reading": {"B": self.blob}}]
        }

    def get_paginator(self, name: str) -> _Pages:
        return _Pages(
            [
                {
                    "Items": [
                        {
                            "vehicle_id": {"S": "EV-1"},
                            "failure_mode": {"S": "brake_wear"},
                            "ts": {"S": "2026-01-02"},
                        },
                        {
                            "vehicle_id": {"S": "EV-1"},
                            "failure_mode": {"S": "tire"},
                            "ts": {"S": "2026-01-03"},
                        },
                        {
                            "vehicle_id": {"S": "EV-2"},
                            "failure_mode": {"S": "motor"},
                            "ts": {"S": "2026-01-01"},
                        },
                    ]
                }
            ]
        )


def test_the_explanation_is_asked_for_the_latest_stored_reading() -> None:
    values = np.arange(len(FEATURES), dtype=float)
    sent: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(
            200,
            json={
                "vehicle_id": "V",
                "ts": "2026-01-01T00:00:00.000000Z",
                "models": {
                    "ev-rul": {
                        "version": 1,
                        "kind": "k",
                        "output": 3.0,
                        "base_value": 1.0,
                        "by_signal": {"SoH": 0.5, "SoC": -2.0},
                    }
                },
            },
        )

    fleet = ApiFleet(
        _api(handler), StubDynamo(pack_reading(values)), predictions_table="p", alert_table="a"
    )
    explained = fleet.explanation("k", "V", None)
    [record] = sent[0]["records"]
    assert record["vehicle_id"] == "V" and record["SoH"] == 1.0 and len(record) == 2 + len(FEATURES)
    assert explained.models[0].by_signal == [("SoC", -2.0), ("SoH", 0.5)]


def test_the_classifier_is_explained_for_the_class_it_predicted() -> None:
    body = {
        "vehicle_id": "V",
        "ts": "t",
        "models": {
            "ev-classifier": {
                "version": 2,
                "kind": "k",
                "classes": {
                    "none": {"output": 2.0, "by_signal": {"SoH": 1.0}},
                    "brake_wear": {"output": -1.0, "by_signal": {"Brake_Pad_Wear": 3.0}},
                },
            }
        },
    }
    assert parse_explanation(body, "brake_wear").models[0].target == "brake_wear"
    assert parse_explanation(body, None).models[0].target == "none"


def test_alerted_vehicles_are_grouped_latest_first() -> None:
    fleet = ApiFleet(
        _api(lambda r: httpx.Response(500)), StubDynamo(b""), predictions_table="p", alert_table="a"
    )
    rows = fleet.alerted_vehicles()
    assert [(r.vehicle_id, r.last_alert_ts, r.failure_modes) for r in rows] == [
        ("EV-1", "2026-01-03", ["brake_wear", "tire"]),
        ("EV-2", "2026-01-01", ["motor"]),
    ]


class StubMlflow:
    def versions(self, name: str) -> list[dict[str, Any]]:
        report = [
            {"model": name, "check": "latency", "passed": True, "detail": "p99 1.2 ms <= 10 ms"}
        ]
        return [
            {
                "version": "1",
                "run_id": "r1",
                "tags": [
                    {"key": "gate_report", "value": json.dumps(report)},
                    {"key": "gate_passed", "value": "true"},
                    {
                        "key": "lifecycle_execution",
                        "value": "arn:aws:states:x:execution:m:make-up-1",
                    },
                ],
            }
        ]


def test_models_join_the_apis_pins_with_mlflows_gate_report() -> None:
    overview = {
        "serving": {"ev-rul": "1"},
        "pins": {"ev-rul": 1},
        "registry": [
            {
                "name": "ev-rul",
                "pinned": 1,
                "aliases": {"champion": 1},
                "versions": [
                    {
                        "version": 1,
                        "aliases": ["champion"],
                        "pinned": True,
                        "metrics": {"rmse": 9.0},
                        "gate_passed": "true",
                    }
                ],
            }
        ],
    }
    registry = ApiRegistry(_api(lambda r: httpx.Response(200, json=overview)), StubMlflow())
    [model] = registry.models("k")
    [v1] = model.versions
    assert v1.pinned and v1.gate_passed and v1.metrics == {"rmse": 9.0} and v1.run_id == "r1"
    assert v1.gate_checks[0].detail == "p99 1.2 ms <= 10 ms" and v1.execution_name == "make-up-1"


def test_monitoring_reads_prometheus_and_alertmanager() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/query":
            return httpx.Response(
                200,
                json={"data": {"result": [{"metric": {"service": "api"}, "value": [0, "0.5"]}]}},
            )
        if request.url.path.endswith("__name__/values"):
            return httpx.Response(200, json={"data": ["evpm_drift_psi", "up"]})
        assert request.url.params["active"] == "true"
        return httpx.Response(
            200,
            json=[
                {
                    "labels": {"alertname": "X", "severity": "page"},
                    "annotations": {"summary": "s"},
                    "startsAt": "2026-01-01T00:00:00Z",
                    "status": {"state": "active"},
                }
            ],
        )

    source = HttpMonitoring("http://p", "http://a", transport=httpx.MockTransport(handler))
    assert source.key_metrics()[0].series[0].value == 0.5
    assert [a.name for a in source.firing_alerts()] == ["X"]
    assert [d.label for d in source.drift()] == ["evpm_drift_psi"]


def _imports(folder: Path) -> set[str]:
    found = set()
    for file in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.add(node.module.split(".")[0])
    return found


def test_the_console_is_a_leaf_apart_from_the_cli_and_the_runtime() -> None:
    """The console uses the domain package (roles, pins, readings) and nothing else of ours;
    nothing of ours imports it (`evpm up` starts it as a process)."""
    assert _imports(REPO / "console") & {"evpm_cli", "evpm_aws", "training_job", "infra"} == set()
    for folder in (
        "layers/evpm/python",
        "cli",
        "training_job",
        "cloudwatch_exporter",
        "infra",
        "functions",
    ):
        assert "console" not in _imports(REPO / folder), folder
