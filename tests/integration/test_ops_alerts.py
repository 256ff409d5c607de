"""Alertmanager's webhook through API Gateway: no API key, a bearer token; stored, listed, sent.

What only the deployed system shows: API Gateway lets ``POST /alerts/webhook`` through without
a key (and still wants one on ``GET /alerts``), the function finds the token in SSM, the
alerts table and its status index, and the people's topic (read here through an SQS queue
subscribed to it).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from evpm_cli.alert_token import ensure_webhook_token
from tests.integration.conftest import System

pytestmark = pytest.mark.integration


def _notification(fingerprint: str, status: str) -> dict[str, Any]:
    alert = {
        "status": status,
        "labels": {"alertname": "EvpmIntegrationProbe", "severity": "warning"},
        "annotations": {"summary": "posted by tests/integration/test_ops_alerts.py"},
        "startsAt": "2026-03-01T12:00:00Z",
        "endsAt": "2026-03-01T12:10:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": fingerprint,
    }
    return {
        "version": "4",
        "groupKey": '{}:{alertname="EvpmIntegrationProbe"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "evpm-webhook",
        "groupLabels": {"alertname": "EvpmIntegrationProbe"},
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [alert],
    }


def _topic_queue(system: System) -> str:
    """An SQS queue subscribed to the ops topic (the topic's ARN from the monitoring stack)."""
    topic = (system.info.get("stacks") or {}).get("OpsAlertsTopicArn")
    if topic is None:
        topics = system.client("sns").list_topics()["Topics"]
        [topic] = [t["TopicArn"] for t in topics if t["TopicArn"].endswith(":evpm-ops-alerts")]
    sqs = system.client("sqs")
    url = sqs.create_queue(QueueName=f"evpm-test-ops-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    system.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return url


def _messages(system: System, url: str, fingerprint: str, want: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while len(found) < want and time.monotonic() < deadline:
        batch = system.client("sqs").receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        found += [
            json.loads(m["Body"]) for m in batch if fingerprint in json.loads(m["Body"])["Message"]
        ]
    return found


def test_webhook_takes_a_bearer_token_not_a_key_and_the_alert_goes_out(system: System) -> None:
    token = ensure_webhook_token(system.client("ssm"))
    fingerprint = uuid.uuid4().hex[:16]
    queue = _topic_queue(system)
    hook = f"{system.api_url}/alerts/webhook"
    with httpx.Client(timeout=30) as http:
        # GIVEN no token, or the wrong one: API Gateway lets it through, the function refuses
        assert http.post(hook, json=_notification(fingerprint, "firing")).status_code == 401
        wrong = {"authorization": "Bearer not-the-token"}
        refused = http.post(hook, json=_notification(fingerprint, "firing"), headers=wrong)
        assert refused.status_code == 401
        # WHEN Alertmanager posts a firing alert, then its resolution, with the token
        auth = {"authorization": f"Bearer {token}"}
        fired = http.post(hook, json=_notification(fingerprint, "firing"), headers=auth)
        assert fired.status_code == 200, fired.text
        assert fired.json()["new"] == 1
        # THEN GET /alerts (a key is still needed there) lists it as firing
        assert http.get(f"{system.api_url}/alerts").status_code == 403
        viewer = {"x-api-key": system.keys["viewer"]}
        page = http.get(f"{system.api_url}/alerts?active=true", headers=viewer).json()
        assert fingerprint in [a["fingerprint"] for a in page["active"]]
        done = http.post(hook, json=_notification(fingerprint, "resolved"), headers=auth)
        assert done.json()["resolved"] == 1
        page = http.get(f"{system.api_url}/alerts", headers=viewer).json()
        assert fingerprint not in [a["fingerprint"] for a in page["active"]]
        assert fingerprint in [a["fingerprint"] for a in page["recent"]]
    # AND people got both, firing then resolved
    subjects = [m["Subject"] for m in _messages(system, queue, fingerprint, want=2)]
    assert sorted(subjects) == [
        "[FIRING] EvpmIntegrationProbe (warning)",
        "[RESOLVED] EvpmIntegrationProbe (warning)",
    ]
