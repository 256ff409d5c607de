"""functions/api: POST /alerts/webhook (Alertmanager, bearer token) and GET /alerts (viewer).

The route tests run twice: on in-memory collaborators, and on the AWS-backed ones
(``alert_store``) over moto's DynamoDB, EventBridge, SNS and SSM, where what went out is read
back from SQS queues subscribed to the bus and the topic.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from evpm.ops_alerts import OPS_ALERT_DETAIL_TYPE, OPS_ALERT_SOURCE, WEBHOOK_TOKEN_PARAMETER
from tests.unit.conftest import load_function
from tests.unit.fakes import FakeGateway, FakeRoles, offline_models
from tests.unit.ops_alert_fakes import (
    TOKEN,
    FixedToken,
    InMemoryOpsAlertStore,
    RecordingNotifier,
    alert,
    install,
    notification,
    resolved,
)

TABLE, BUS, TOPIC = "evpm-alerts", "evpm-alerts", "evpm-ops-alerts"
KEYS = {"k-viewer": "viewer", "k-fleet": "fleet-service", "k-none": None}
AUTH = {"authorization": f"Bearer {TOKEN}"}


@dataclass
class World:
    """The API module and a way to see what was stored and sent, whatever the backend."""

    api: Any
    client: TestClient
    backend: str
    aws: dict[str, Any] = field(default_factory=dict)

    @property
    def ops(self) -> Any:
        return self.api.app.state.ops_alerts

    def stored(self) -> list[dict[str, Any]]:
        if self.backend == "memory":
            return [a.model_dump() for a in self.ops.store.items.values()]
        items = self.aws["dynamodb"].scan(TableName=TABLE)["Items"]
        return [{k: _plain(v) for k, v in item.items()} for item in items]

    def events(self) -> list[dict[str, Any]]:
        """The OpsAlert events put on the bus since the last look."""
        if self.backend == "memory":
            sent, self.ops.notifier.seen_events = self._new("seen_events")
            return [a.event_detail(repeat=r) for a, r in sent]
        return [json.loads(m)["detail"] for m in self._drain("events_queue")]

    def messages(self) -> list[dict[str, Any]]:
        """The SNS messages since the last look (memory: the alerts the notifier was given)."""
        if self.backend == "memory":
            sent, self.ops.notifier.seen_messages = self._new("seen_messages")
            return [{"Subject": a.alertname} for a, _ in sent]
        return [json.loads(m) for m in self._drain("topic_queue")]

    def _new(self, mark: str) -> tuple[list[Any], int]:
        sent = self.ops.notifier.sent
        seen = getattr(self.ops.notifier, mark, 0)
        return sent[seen:], len(sent)

    def _drain(self, queue: str) -> list[str]:
        sqs, url = self.aws["sqs"], self.aws[queue]
        bodies = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            bodies += [m["Body"] for m in batch]
            for m in batch:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return bodies


def _plain(value: dict[str, Any]) -> Any:
    from boto3.dynamodb.types import TypeDeserializer

    out = TypeDeserializer().deserialize(value)
    return int(out) if hasattr(out, "as_integer_ratio") and not isinstance(out, float) else out


def _aws_resources(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[
            {"AttributeName": "fingerprint", "KeyType": "HASH"},
            {"AttributeName": "starts_at", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("fingerprint", "starts_at", "status", "updated_at")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-status",
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "updated_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    sqs, events, sns = boto3.client("sqs"), boto3.client("events"), boto3.client("sns")
    urls = {q: sqs.create_queue(QueueName=q)["QueueUrl"] for q in ("events-q", "topic-q")}
    arns = {
        q: sqs.get_queue_attributes(QueueUrl=u, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        for q, u in urls.items()
    }
    events.create_event_bus(Name=BUS)
    events.put_rule(
        Name="ops",
        EventBusName=BUS,
        EventPattern=json.dumps(
            {"source": [OPS_ALERT_SOURCE], "detail-type": [OPS_ALERT_DETAIL_TYPE]}
        ),
    )
    events.put_targets(Rule="ops", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arns["events-q"]}])
    topic = sns.create_topic(Name=TOPIC)["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arns["topic-q"])
    boto3.client("ssm").put_parameter(
        Name=WEBHOOK_TOKEN_PARAMETER, Value=TOKEN, Type="SecureString"
    )
    monkeypatch.setenv("OPS_ALERTS_TABLE", TABLE)
    monkeypatch.setenv("ALERT_BUS_NAME", BUS)
    monkeypatch.setenv("OPS_ALERTS_TOPIC_ARN", topic)
    return {
        "dynamodb": dynamodb,
        "sqs": sqs,
        "events_queue": urls["events-q"],
        "topic_queue": urls["topic-q"],
        "topic": topic,
    }


@pytest.fixture(params=["memory", "aws"])
def world(request, aws_env, monkeypatch) -> Iterator[World]:
    with mock_aws():
        monkeypatch.setenv("PREDICTIONS_TABLE", "evpm-predictions")
        monkeypatch.setenv("LABELS_TABLE", "evpm-labels")
        aws = _aws_resources(monkeypatch) if request.param == "aws" else {}
        api = load_function("api")
        api.app.state.roles = FakeRoles(KEYS)
        offline_models(api.app)
        if request.param == "memory":
            install(api.app)
        yield World(api, TestClient(FakeGateway(api.app)), request.param, aws)


def _post(world: World, body: Any, headers: dict[str, str] | None = AUTH, raw: str | None = None):
    content = raw if raw is not None else json.dumps(body)
    return world.client.post(
        "/alerts/webhook",
        content=content,
        headers={"content-type": "application/json", **(headers or {})},
    )


# --- authentication -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {"authorization": "Bearer wrong-token"},
        {"authorization": f"Basic {TOKEN}"},
        {"authorization": TOKEN},
        {"x-api-key": "k-fleet"},  # an API key is not the webhook's credential
    ],
    ids=["none", "wrong", "basic", "no-scheme", "api-key"],
)
def test_webhook_without_the_token_is_401_and_stores_nothing(world, headers) -> None:
    # WHEN Alertmanager's body comes without the right bearer token
    response = _post(world, notification(), headers=headers)
    # THEN 401, with the scheme to use, and nothing stored or sent
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert world.stored() == [] and world.events() == [] and world.messages() == []


def test_an_unauthenticated_malformed_body_is_401_not_422(world) -> None:
    # GIVEN a caller without the token: it learns nothing about the body's format
    response = _post(world, None, headers={"authorization": "Bearer nope"}, raw="{not json")
    assert response.status_code == 401


def test_token_that_cannot_be_read_is_503_and_stores_nothing(world) -> None:
    # GIVEN the token parameter is missing (not created yet)
    if world.backend == "aws":
        boto3.client("ssm").delete_parameter(Name=WEBHOOK_TOKEN_PARAMETER)
    else:
        world.ops.token = FixedToken(None)
    # WHEN Alertmanager calls with a token
    response = _post(world, notification())
    # THEN a retryable 503 naming the parameter (Alertmanager retries), and nothing stored
    assert response.status_code == 503
    assert WEBHOOK_TOKEN_PARAMETER in response.json()["detail"]
    assert response.headers["retry-after"]
    assert world.stored() == []


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "raw", "loc"),
    [
        (None, "{not json", ["body"]),
        (None, "", ["body"]),
        ({**notification(), "version": "3"}, None, ["body", "version"]),
        (notification(alert(fingerprint="../../etc")), None, ["body", "alerts", 0, "fingerprint"]),
        (notification(alert(labels={"severity": "x"})), None, ["body", "alerts", 0, "labels"]),
        ({k: v for k, v in notification().items() if k != "alerts"}, None, ["body", "alerts"]),
    ],
    ids=["not-json", "empty", "version", "fingerprint", "no-alertname", "no-alerts"],
)
def test_malformed_body_is_422_naming_the_field_and_stores_nothing(world, body, raw, loc) -> None:
    response = _post(world, body, raw=raw)
    assert response.status_code == 422
    assert loc in [e["loc"] for e in response.json()["detail"]]
    assert world.stored() == [] and world.events() == [] and world.messages() == []


# --- storing and sending ------------------------------------------------------------------------


def test_firing_alert_is_stored_put_on_the_bus_and_published(world) -> None:
    # WHEN Alertmanager sends a firing alert with the token
    response = _post(world, notification())
    # THEN it is new, stored once, sent once to the bus and once to people
    assert response.status_code == 200
    assert response.json() == {
        "received": 1, "new": 1, "repeats": 0, "resolved": 0, "stale": 0, "published": 1
    }
    [item] = world.stored()
    assert item["fingerprint"] == "a1b2c3d4e5f60718"
    assert item["starts_at"] == "2024-05-01T12:00:00.123000Z"
    assert item["status"] == "firing" and item["notifications"] == 1
    assert item["cloudwatch_alarm"] == "evpm-api-latency-p95"
    assert item["expires_at"] > item["notifications"]
    [event] = world.events()
    assert event["alertname"] == "EvpmApiLatencyHigh" and event["repeat"] is False
    [message] = world.messages()
    if world.backend == "aws":
        assert message["Subject"] == "[FIRING] EvpmApiLatencyHigh (warning)"
        assert message["Message"].startswith("FIRING: EvpmApiLatencyHigh")
        assert message["MessageAttributes"]["status"]["Value"] == "firing"


def test_repeat_then_resolution_update_the_same_occurrence(world) -> None:
    # GIVEN a firing alert Alertmanager repeats (repeat_interval), then resolves
    _post(world, notification())
    repeat = _post(world, notification()).json()
    done = _post(world, notification(resolved())).json()
    # THEN one occurrence, notified three times, now resolved with its end
    assert (repeat["repeats"], done["resolved"]) == (1, 1)
    [item] = world.stored()
    assert item["status"] == "resolved" and item["notifications"] == 3
    assert item["ends_at"] == "2024-05-01T12:20:00.000000Z"
    # AND every notification went out, the repeat marked as one
    assert [(e["status"], e["repeat"]) for e in world.events()] == [
        ("firing", False), ("firing", True), ("resolved", False)
    ]
    assert len(world.messages()) == 3


def test_a_late_firing_never_reopens_a_resolved_occurrence(world) -> None:
    # GIVEN an occurrence that resolved
    _post(world, notification())
    _post(world, notification(resolved()))
    world.events(), world.messages()
    # WHEN a retried "firing" notification of it arrives late
    late = _post(world, notification()).json()
    # THEN it is dropped: still resolved, nothing sent
    assert late["stale"] == 1 and late["published"] == 0
    [item] = world.stored()
    assert item["status"] == "resolved"
    assert world.events() == [] and world.messages() == []


def test_the_same_alert_firing_again_later_is_a_new_occurrence(world) -> None:
    _post(world, notification())
    _post(world, notification(resolved()))
    again = _post(world, notification(alert(startsAt="2024-05-01T15:00:00Z"))).json()
    assert again["new"] == 1
    assert sorted((i["starts_at"], i["status"]) for i in world.stored()) == [
        ("2024-05-01T12:00:00.123000Z", "resolved"),
        ("2024-05-01T15:00:00.000000Z", "firing"),
    ]


def test_delivery_failure_is_503_so_alertmanager_retries(world) -> None:
    # GIVEN the bus / topic refuse
    if world.backend == "aws":
        world.ops.notifier.topic_arn = world.aws["topic"] + "-gone"
    else:
        world.ops.notifier = RecordingNotifier(fail=True)
    # WHEN a notification comes
    response = _post(world, notification())
    # THEN 503 (stored, not delivered); the retry is a repeat and goes out
    assert response.status_code == 503
    assert "not delivered" in response.json()["detail"]
    assert len(world.stored()) == 1


# --- listing -------------------------------------------------------------------------------------


def test_alerts_lists_firing_and_recently_resolved_for_a_viewer(world) -> None:
    # GIVEN one alert still firing and one that resolved
    _post(world, notification())
    lag = alert(fingerprint="00aa11bb22cc33dd", labels={"alertname": "EvpmStreamLag"})
    _post(world, notification(lag))
    _post(world, notification(resolved(lag)))
    # WHEN a viewer lists the alerts
    page = world.client.get("/alerts", headers={"x-api-key": "k-viewer"})
    # THEN the firing one is active, the resolved one recent
    assert page.status_code == 200
    body = page.json()
    assert [a["alertname"] for a in body["active"]] == ["EvpmApiLatencyHigh"]
    assert [a["alertname"] for a in body["recent"]] == ["EvpmStreamLag"]
    assert body["hours"] == 24
    # AND --active leaves the resolved ones out
    active = world.client.get("/alerts?active=true", headers={"x-api-key": "k-viewer"}).json()
    assert [a["alertname"] for a in active["active"]] == ["EvpmApiLatencyHigh"]
    assert active["recent"] == []


def test_alerts_needs_a_key_with_a_role(world) -> None:
    assert world.client.get("/alerts").status_code == 401
    refused = world.client.get("/alerts", headers={"x-api-key": "k-none"})
    assert refused.status_code == 403
    assert refused.json()["permission"] == "alerts:read"
    assert world.client.get("/alerts", headers={"x-api-key": "k-fleet"}).status_code == 200


def test_alerts_query_is_bounded(world) -> None:
    key = {"x-api-key": "k-viewer"}
    assert world.client.get("/alerts?limit=0", headers=key).status_code == 422
    assert world.client.get("/alerts?hours=721", headers=key).status_code == 422


# --- the contract with API Gateway and the docs --------------------------------------------------


def test_openapi_documents_the_bearer_webhook_and_its_body(world) -> None:
    schema = world.client.get("/openapi.json").json()
    hook = schema["paths"]["/alerts/webhook"]["post"]
    assert {"200", "401", "422", "503"} <= set(hook["responses"])
    assert hook["security"] == [{"HTTPBearer": []}]
    body = hook["requestBody"]["content"]["application/json"]["schema"]
    assert "$defs" not in json.dumps(body)
    assert {"version", "alerts", "groupKey"} <= set(body["properties"])
    listing = schema["paths"]["/alerts"]["get"]
    assert listing["x-evpm-permission"] == "alerts:read"


def test_memory_store_keeps_the_dynamo_stores_rules() -> None:
    # The in-memory store is what most route tests use: same outcomes as the table's.
    store = InMemoryOpsAlertStore()
    assert store.active(limit=5) == [] and store.resolved_since("", limit=5) == []
