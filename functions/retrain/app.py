"""Retraining trigger Lambda: a ``DriftDetected`` / ``QualityDegraded`` event may start the lifecycle.

An EventBridge rule on the alert bus invokes it with the event. The rules are
:func:`evpm.retrain.decide`'s (one execution at a time, a cool-down, suppressed triggers
recorded with the reason); here is only the I/O, and the one thing a pure function cannot do:
claim the cool-down atomically (a conditional write), so two events at once start one run.
EventBridge may deliver an event twice: a decision already recorded for its id is returned
as it was, and nothing starts again.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import ClientError

from evpm.retrain import Decision, TriggerEvent, cooldown_end, decide, lifecycle_input
from evpm.settings import RetrainSettings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

settings = RetrainSettings()
logger = Logger(service=settings.POWERTOOLS_SERVICE_NAME, level=settings.LOG_LEVEL)
COOLDOWN_KEY = "cooldown"


class Triggers:
    """The triggers table: ``event#<id>`` decisions, and the one ``cooldown`` claim."""

    def __init__(self, table: str, *, resource: Any | None = None) -> None:
        self.table = (resource or boto3.resource("dynamodb")).Table(table)

    def recorded(self, event_id: str) -> dict[str, Any] | None:
        return self.table.get_item(Key={"id": f"event#{event_id}"}).get("Item")

    def cooldown_until(self) -> datetime | None:
        item = self.table.get_item(Key={"id": COOLDOWN_KEY}, ConsistentRead=True).get("Item")
        return datetime.fromisoformat(item["until"]) if item else None

    def claim(self, event_id: str, now: datetime, until: datetime) -> bool:
        """Take the cool-down unless someone holds it; False when another claim won."""
        try:
            self.table.put_item(
                Item={
                    "id": COOLDOWN_KEY,
                    "until": until.isoformat(),
                    "event_id": event_id,
                    "claimed_at": now.isoformat(),
                },
                ConditionExpression="attribute_not_exists(id) OR #u < :now",
                ExpressionAttributeNames={"#u": "until"},
                ExpressionAttributeValues={":now": now.isoformat()},
            )
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def release(self, event_id: str) -> None:
        self.table.delete_item(
            Key={"id": COOLDOWN_KEY},
            ConditionExpression="event_id = :e",
            ExpressionAttributeValues={":e": event_id},
        )

    def record(self, event: TriggerEvent, decision: Decision, **extra: Any) -> dict[str, Any]:
        item = {
            "id": f"event#{event.id}",
            "event_id": event.id,
            "type": event.detail_type,
            "event_time": event.time.isoformat(),
            "decided_at": datetime.now(UTC).isoformat(),
            "action": decision.action,
            "reason": decision.reason,
            "detail": decision.detail,
            "models": event.models,
            **extra,
        }
        self.table.put_item(Item=item)
        return item


def trigger(event: TriggerEvent, *, triggers: Triggers, sfn: Any, now: datetime) -> dict[str, Any]:
    """Decide on ``event``, act on it and record the decision; returns the record."""
    previous = triggers.recorded(event.id)
    if previous:
        logger.info("event already decided", extra={"event_id": event.id})
        return previous
    running = [
        e["name"]
        for e in sfn.list_executions(
            stateMachineArn=settings.STATE_MACHINE_ARN, statusFilter="RUNNING", maxResults=10
        )["executions"]
    ]
    decision = decide(event, running=running, cooldown_until=triggers.cooldown_until(), now=now)
    extra: dict[str, Any] = {}
    if decision.action == "start":
        until = cooldown_end(now, settings.COOLDOWN_SECONDS)
        if not triggers.claim(event.id, now, until):  # another event won the race
            decision = Decision(
                action="suppressed", reason="cooldown", detail="claimed by another event"
            )
        else:
            name = f"drift-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
            try:
                started = sfn.start_execution(
                    stateMachineArn=settings.STATE_MACHINE_ARN,
                    name=name,
                    input=json.dumps(lifecycle_input(event)),
                )
            except ClientError:
                triggers.release(event.id)  # the run did not start: no cool-down for nothing
                raise
            extra = {"execution_arn": started["executionArn"], "cooldown_until": until.isoformat()}
    record = triggers.record(event, decision, **extra)
    with single_metric(
        name="RetrainTriggers",
        unit=MetricUnit.Count,
        value=1,
        namespace=settings.POWERTOOLS_METRICS_NAMESPACE,
    ) as metric:
        metric.add_dimension(name="decision", value=decision.reason)
    logger.info("retraining trigger decided", extra=record)
    return record


_triggers: Triggers | None = None
_sfn: Any = None


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point (``app.handler``): one EventBridge event."""
    global _triggers, _sfn
    if _triggers is None:
        _triggers, _sfn = Triggers(settings.TRIGGERS_TABLE), boto3.client("stepfunctions")
    started = time.perf_counter()
    record = trigger(
        TriggerEvent.model_validate(event), triggers=_triggers, sfn=_sfn, now=datetime.now(UTC)
    )
    return {**record, "seconds": round(time.perf_counter() - started, 3)}
