"""Failed EventBridge deliveries: the pure parts (no LocalStack needed)."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest

from evpm_localstack import events_delivery

RULE = "arn:aws:events:us-east-1:000000000000:rule/evpm-alerts/ToAudit"
QUEUE = "arn:aws:sqs:us-east-1:000000000000:evpm-alerts-audit"


def _sender(dlq: str | None = "arn:aws:sqs:us-east-1:000000000000:evpm-alerts-dlq"):
    target = {"Id": "Target0", "Arn": QUEUE}
    if dlq:
        target["DeadLetterConfig"] = {"Arn": dlq}
    return SimpleNamespace(rule_arn=RULE, rule_name="ToAudit", target=target,
                           account_id="000000000000", region="us-east-1")  # fmt: skip


@pytest.mark.parametrize(
    ("arn", "bus"),
    [(RULE, "evpm-alerts"), ("arn:aws:events:us-east-1:000000000000:rule/nightly", "default")],
)
def test_bus_of_a_rule(arn: str, bus: str) -> None:
    assert events_delivery.bus_name_of(arn) == bus


def test_a_count_under_both_dimension_sets_aws_publishes() -> None:
    datums = events_delivery.datums(RULE, "ToAudit", "FailedInvocations", 100.0)
    assert [d["Dimensions"] for d in datums] == [
        [{"Name": "RuleName", "Value": "ToAudit"}],
        [
            {"Name": "EventBusName", "Value": "evpm-alerts"},
            {"Name": "RuleName", "Value": "ToAudit"},
        ],
    ]
    assert all(d["MetricName"] == "FailedInvocations" and d["Values"] == [1.0] for d in datums)


def test_dlq_message_attributes_say_why() -> None:
    attributes = events_delivery.dlq_attributes(_sender(), KeyError("no such queue"))
    values = {k: v["StringValue"] for k, v in attributes.items()}
    assert values == {
        "ERROR_CODE": "KeyError", "ERROR_MESSAGE": "'no such queue'", "RULE_ARN": RULE,
        "TARGET_ARN": QUEUE, "RETRY_ATTEMPTS": "0",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("parked", "counted"),
    [
        (True, ["FailedInvocations", "InvocationsSentToDlq"]),
        (False, ["FailedInvocations", "InvocationsFailedToBeSentToDlq"]),
        (None, ["FailedInvocations"]),
    ],
)
def test_a_failure_is_counted_dead_lettered_and_logged(monkeypatch, caplog, parked, counted):
    metrics: list[str] = []
    monkeypatch.setattr(events_delivery.metrics_sink, "put",
                        lambda _a, _r, ns, datums: metrics.extend(
                            f"{ns}:{d['MetricName']}" for d in datums[:1]))  # fmt: skip
    monkeypatch.setattr(events_delivery, "_send_to_dlq", lambda *_: parked)
    with caplog.at_level(logging.WARNING, logger=events_delivery.__name__):
        events_delivery.on_failure(_sender(), {"detail": {}}, RuntimeError("queue gone"))
    assert metrics == [f"AWS/Events:{name}" for name in counted]
    [record] = caplog.records
    line = json.loads(record.getMessage())
    assert line["rule"] == RULE and line["target"] == QUEUE and line["sent_to_dlq"] is parked
    assert line["error"] == "queue gone"


def test_without_a_dlq_nothing_is_sent() -> None:
    assert events_delivery._send_to_dlq(_sender(dlq=None), {}, RuntimeError("x")) is None
