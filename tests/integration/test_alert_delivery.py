"""An event the alert bus cannot deliver is never silent: dead-lettered with why, and counted.

The stack gives the audit rule's target a dead-letter queue (``evpm-alerts-dlq``). To fail a
delivery without breaking the deployed one, a probe rule on the same bus targets a queue that
does not exist, with a DLQ of its own: the emulator must do what EventBridge does - the event
in the DLQ with ``ERROR_CODE``/``ERROR_MESSAGE``/``RULE_ARN``/``TARGET_ARN``,
``FailedInvocations`` and ``InvocationsSentToDlq`` for the rule, and a WARNING log line.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.integration.conftest import System


def test_every_rule_on_the_alert_bus_has_a_dead_letter_queue(system: System) -> None:
    # GIVEN the rules on evpm-alerts: VehicleAlerts to the audit queue, and the drift events to
    # the retraining trigger (evpm-drift)
    events = system.client("events")
    bus = system.info["stacks"]["AlertBusName"]
    targets = {
        target["Arn"].rsplit(":", 1)[-1]: target
        for rule in events.list_rules(EventBusName=bus)["Rules"]
        for target in events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
    }
    # THEN each target parks what it cannot deliver
    assert set(targets) == {"evpm-alerts-audit", "evpm-retrain"}
    assert targets["evpm-alerts-audit"]["DeadLetterConfig"]["Arn"].endswith(":evpm-alerts-dlq")
    assert targets["evpm-retrain"]["DeadLetterConfig"]["Arn"].endswith(":evpm-retrain-dlq")


def _metric_sum(system: System, metric: str, rule: str) -> float:
    now = datetime.now(UTC)
    points = system.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/Events", MetricName=metric,
        Dimensions=[{"Name": "RuleName", "Value": rule}],
        StartTime=now - timedelta(minutes=10), EndTime=now + timedelta(minutes=1),
        Period=60, Statistics=["Sum"],
    )["Datapoints"]  # fmt: skip
    return sum(p["Sum"] for p in points)


def test_an_undeliverable_event_is_dead_lettered_counted_and_logged(system: System) -> None:
    marker = uuid.uuid4().hex[:8]
    events, sqs = system.client("events"), system.client("sqs")
    bus = system.info["stacks"]["AlertBusName"]
    rule = f"probe-{marker}"
    dlq_url = sqs.create_queue(QueueName=f"evpm-probe-{marker}-undelivered")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]  # fmt: skip
    missing = f"arn:aws:sqs:us-east-1:000000000000:evpm-probe-{marker}-missing"
    events.put_rule(Name=rule, EventBusName=bus,
                    EventPattern=json.dumps({"detail-type": [f"Probe-{marker}"]}))  # fmt: skip
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[
        {"Id": "gone", "Arn": missing, "DeadLetterConfig": {"Arn": dlq_arn}}])  # fmt: skip
    try:
        answer = events.put_events(Entries=[{
            "EventBusName": bus, "Source": "evpm.test", "DetailType": f"Probe-{marker}",
            "Detail": json.dumps({"marker": marker}),
        }])  # fmt: skip
        assert answer["FailedEntryCount"] == 0  # accepted: delivery fails later, as on AWS
        messages: list[dict] = []
        deadline = time.monotonic() + 30
        while not messages and time.monotonic() < deadline:
            messages = sqs.receive_message(
                QueueUrl=dlq_url, WaitTimeSeconds=2, MessageAttributeNames=["All"]
            ).get("Messages", [])
        assert messages, "the undeliverable event never reached the target's DLQ"
        [message] = messages
        assert json.loads(message["Body"])["detail"] == {"marker": marker}
        attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
        assert attributes["RULE_ARN"].endswith(f"rule/{bus}/{rule}")
        assert attributes["TARGET_ARN"] == missing
        assert attributes["ERROR_CODE"] and attributes["ERROR_MESSAGE"]
        # counted for the rule, as AWS/Events does
        deadline = time.monotonic() + 30
        while _metric_sum(system, "InvocationsSentToDlq", rule) < 1:
            assert time.monotonic() < deadline, "InvocationsSentToDlq was not counted"
            time.sleep(1)
        assert _metric_sum(system, "FailedInvocations", rule) == 1
        # and logged where people look
        log = Path(system.info["emulator"]["state_dir"]) / "logs" / "localstack.log"
        lines = [json.loads(line) for line in log.read_text().splitlines()
                 if "event not delivered to its target" in line and rule in line]  # fmt: skip
        assert lines, "no log line for the failed delivery"
    finally:
        events.remove_targets(Rule=rule, EventBusName=bus, Ids=["gone"])
        events.delete_rule(Name=rule, EventBusName=bus)
        sqs.delete_queue(QueueUrl=dlq_url)
