"""Alerts: the dedup table, the alert bus and its audit rule, and the scorer's narrow grants."""

from __future__ import annotations

from typing import Any

from infra import constants as c
from tests.infra.helpers import actions, logical_id, only, policy_statements, resources


def _statements_on(template, stack: str, resource_id_fragment: str) -> list[dict[str, Any]]:
    return [s for s in policy_statements(template(stack)) if resource_id_fragment in str(s)]


def test_dedup_table_keys_on_alert_key_and_expires(template) -> None:
    tpl = template(c.STORAGE_STACK)
    lid = logical_id(tpl, "AWS::DynamoDB::Table", TableName="evpm-alert-dedup")
    props = resources(tpl, "AWS::DynamoDB::Table")[lid]["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "alert_key", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"] == {"SSEEnabled": True}


def test_alert_bus_routes_vehicle_alerts_to_the_audit_queue(template) -> None:
    tpl = template(c.SCORING_STACK)
    bus_id, bus = only(tpl, "AWS::Events::EventBus")
    assert bus["Properties"]["Name"] == "evpm-alerts"
    queue_id = logical_id(tpl, "AWS::SQS::Queue", QueueName="evpm-alerts-audit")
    _, rule = only(tpl, "AWS::Events::Rule")
    props = rule["Properties"]
    assert props["EventBusName"] == {"Ref": bus_id}
    assert props["EventPattern"] == {"source": ["evpm.scorer"], "detail-type": ["VehicleAlert"]}
    assert [t["Arn"] for t in props["Targets"]] == [{"Fn::GetAtt": [queue_id, "Arn"]}]
    # AND what it cannot deliver goes to evpm-alerts-dlq (never dropped silently)
    dlq_id = logical_id(tpl, "AWS::SQS::Queue", QueueName="evpm-alerts-dlq")
    [target] = props["Targets"]
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 7200}
    # AND only this rule may send to either queue, over TLS
    policies = resources(tpl, "AWS::SQS::QueuePolicy").values()
    by_queue = {str(p["Properties"]["Queues"]): p for p in policies}
    assert len(by_queue) == 2 and any(queue_id in q for q in by_queue)
    assert any(dlq_id in q for q in by_queue)
    for policy in by_queue.values():
        allow = [
            s
            for s in policy["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Allow"
        ]
        assert allow[0]["Principal"] == {"Service": "events.amazonaws.com"}
        assert "aws:SourceArn" in str(allow[0]["Condition"])


def test_scorer_gets_alert_settings_and_only_the_grants_it_uses(template) -> None:
    tpl = template(c.SCORING_STACK)
    _, fn = only(tpl, "AWS::Lambda::Function")
    env = fn["Properties"]["Environment"]["Variables"]
    bus_id, _ = only(tpl, "AWS::Events::EventBus")
    assert env["ALERT_BUS_NAME"] == {"Ref": bus_id}
    assert "AlertDedup" in str(env["ALERT_DEDUP_TABLE"])
    # PutEvents on this bus only
    [events] = [s for s in policy_statements(tpl) if "events:PutEvents" in actions(s)]
    assert events["Resource"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    # claim / confirm / release by key on the dedup table: no reads, no scans, no batch
    [dedup] = _statements_on(template, c.SCORING_STACK, "AlertDedup")
    assert sorted(actions(dedup)) == [
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ]


def test_constants_match_the_domain() -> None:
    from evpm import alerts

    assert c.ALERT_SOURCE == alerts.ALERT_SOURCE
    assert c.ALERT_DETAIL_TYPE == alerts.ALERT_DETAIL_TYPE
    assert c.ALERT_WINDOW_SECONDS == alerts.DEFAULT_WINDOW_SECONDS
