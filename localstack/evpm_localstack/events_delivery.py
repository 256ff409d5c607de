"""EventBridge target deliveries that fail are counted, logged and sent to the target's DLQ.

Why: on AWS, an event a rule cannot deliver to its target shows up three ways - the rule's
``FailedInvocations`` metric (``AWS/Events``), and, when the target has a dead-letter queue,
the event itself in that queue with why it failed (``InvocationsSentToDlq``). LocalStack's
events provider only logs such a failure at INFO and drops the event: an alert that never
reached its queue left no trace anyone would look at. This wraps every target sender's delivery
so that the emulator does what AWS does:

- each delivery counts ``Invocations`` or ``FailedInvocations`` for the rule (dimensions
  ``RuleName`` and ``EventBusName, RuleName``), through :mod:`evpm_localstack.metrics_sink`;
- a failure is logged as a JSON line at WARNING, naming the rule, the target and the error;
- the event goes to the target's ``DeadLetterConfig`` queue (SQS), with AWS's message
  attributes (``ERROR_CODE``, ``ERROR_MESSAGE``, ``RULE_ARN``, ``TARGET_ARN``,
  ``RETRY_ATTEMPTS``), counted as ``InvocationsSentToDlq`` (or
  ``InvocationsFailedToBeSentToDlq``, logged at ERROR, when even that fails).

What differs from AWS: AWS retries a retryable failure with back-off for up to 24 hours before
the DLQ; here the first failure goes to the DLQ (``RETRY_ATTEMPTS`` 0), as AWS does at once for
failures it does not retry (a missing queue, a denied call).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from evpm_localstack import metrics_sink

LOG = logging.getLogger(__name__)
NAMESPACE = "AWS/Events"
_MARK = "_evpm_counts_deliveries"


def bus_name_of(rule_arn: str) -> str:
    """``arn:...:rule/evpm-alerts/ToAudit`` -> ``evpm-alerts``; the default bus has no segment."""
    resource = rule_arn.split(":", 5)[-1]  # rule/<bus>/<name> or rule/<name>
    parts = resource.split("/")
    return parts[1] if len(parts) == 3 else "default"


def datums(rule_arn: str, rule_name: str, metric: str, now: float) -> list[dict[str, Any]]:
    """One count of ``metric`` for the rule, under both dimension sets AWS publishes."""
    sets = [
        [{"Name": "RuleName", "Value": rule_name}],
        [
            {"Name": "EventBusName", "Value": bus_name_of(rule_arn)},
            {"Name": "RuleName", "Value": rule_name},
        ],
    ]
    return [
        {"MetricName": metric, "Dimensions": dims, "Timestamp": now, "Unit": "Count",
         "Values": [1.0]}
        for dims in sets
    ]  # fmt: skip


def dlq_attributes(sender: Any, error: BaseException) -> dict[str, dict[str, str]]:
    """The message attributes AWS puts on an event it sends to a target's DLQ."""
    values = {
        "ERROR_CODE": type(error).__name__,
        "ERROR_MESSAGE": str(error)[:1000] or type(error).__name__,
        "RULE_ARN": sender.rule_arn,
        "TARGET_ARN": sender.target["Arn"],
        "RETRY_ATTEMPTS": "0",
    }
    return {key: {"DataType": "String", "StringValue": value} for key, value in values.items()}


def _count(sender: Any, metric: str) -> None:
    metrics_sink.put(
        sender.account_id, sender.region, NAMESPACE,
        datums(sender.rule_arn, sender.rule_name, metric, time.time()),
    )  # fmt: skip


def _send_to_dlq(sender: Any, event: Any, error: BaseException) -> bool | None:
    """Put the event on the target's DLQ; None when it has none, False when that failed."""
    dlq_arn = (sender.target.get("DeadLetterConfig") or {}).get("Arn")
    if not dlq_arn:
        return None
    from localstack.aws.connect import connect_to
    from localstack.utils.aws.arns import extract_account_id_from_arn, extract_region_from_arn

    try:
        sqs = connect_to(
            aws_access_key_id=extract_account_id_from_arn(dlq_arn),
            region_name=extract_region_from_arn(dlq_arn),
        ).sqs
        url = sqs.get_queue_url(
            QueueName=dlq_arn.rsplit(":", 1)[-1],
            QueueOwnerAWSAccountId=extract_account_id_from_arn(dlq_arn),
        )["QueueUrl"]
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps(event, default=str),
            MessageAttributes=dlq_attributes(sender, error),
        )
    except Exception as dlq_error:
        LOG.error(json.dumps({
            "message": "event not delivered and not sent to the dead-letter queue",
            "rule": sender.rule_arn, "target": sender.target["Arn"], "dlq": dlq_arn,
            "error": str(error), "dlq_error": str(dlq_error),
        }))  # fmt: skip
        return False
    return True


def on_failure(sender: Any, event: Any, error: BaseException) -> None:
    """Count, log and dead-letter one failed delivery (never raises)."""
    _count(sender, "FailedInvocations")
    parked = _send_to_dlq(sender, event, error)
    if parked is not None:
        _count(sender, "InvocationsSentToDlq" if parked else "InvocationsFailedToBeSentToDlq")
    LOG.warning(json.dumps({
        "message": "event not delivered to its target",
        "rule": sender.rule_arn, "target_id": sender.target.get("Id"),
        "target": sender.target["Arn"], "error_code": type(error).__name__,
        "error": str(error)[:500], "sent_to_dlq": parked,
    }))  # fmt: skip


def install() -> None:
    """Wrap ``TargetSender.process_event`` (idempotent)."""
    from localstack.services.events.target import TargetSender

    if getattr(TargetSender.process_event, _MARK, False):
        return
    deliver = TargetSender.process_event

    def process_event(self: Any, event: Any, trace_header: Any) -> None:
        try:
            deliver(self, event, trace_header)
        except Exception as error:
            try:
                on_failure(self, event, error)
            except Exception:
                LOG.exception("evpm: counting a failed EventBridge delivery failed")
            raise
        _count(self, "Invocations")

    setattr(process_event, _MARK, True)
    TargetSender.process_event = process_event
