"""The fleet alert bus, and an audit queue that receives every alert published on it."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import constants as c
from infra.nag import suppress


class AlertBus(Construct):
    """Custom bus ``evpm-alerts`` with a rule sending ``evpm.scorer`` / ``VehicleAlert`` to SQS.

    Why a queue behind the bus: it is the one consumer that exists from day one, so people (and
    the integration tests) can see exactly which alerts went out; the paging / ticketing
    consumers are further rules on the same bus.
    """

    def __init__(self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy):
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", event_bus_name=c.ALERT_BUS)
        self.bus.apply_removal_policy(removal_policy)
        self.audit_queue = sqs.Queue(
            self,
            "AuditQueue",
            queue_name=c.ALERTS_AUDIT_QUEUE,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(c.ALERTS_AUDIT_RETENTION_DAYS),
            removal_policy=removal_policy,
        )
        # An alert the rule cannot deliver is never silent: EventBridge parks it here with the
        # error (message attributes ERROR_CODE, ERROR_MESSAGE, RULE_ARN, TARGET_ARN), counts
        # FailedInvocations and InvocationsSentToDlq, and the DLQ's growth is an alert.
        self.undelivered = sqs.Queue(
            self,
            "UndeliveredQueue",
            queue_name=c.ALERTS_DLQ,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(c.DLQ_RETENTION_DAYS),
            removal_policy=removal_policy,
        )
        self.rule = events.Rule(
            self,
            "ToAudit",
            event_bus=self.bus,
            description="every VehicleAlert from the scorer, to the audit queue",
            event_pattern=events.EventPattern(
                source=[c.ALERT_SOURCE], detail_type=[c.ALERT_DETAIL_TYPE]
            ),
            targets=[
                targets.SqsQueue(
                    self.audit_queue,
                    dead_letter_queue=self.undelivered,
                    retry_attempts=c.ALERTS_DELIVERY_RETRIES,
                    max_event_age=Duration.hours(c.ALERTS_DELIVERY_MAX_AGE_HOURS),
                )
            ],
        )
        suppress(
            self.audit_queue,
            "AwsSolutions-SQS3",
            "The audit queue is itself the end of the line: it keeps a copy of every alert for "
            "people and tests to read; nothing consumes it with retries that could need a DLQ.",
        )
        suppress(
            self.undelivered,
            "AwsSolutions-SQS3",
            "This is the dead-letter queue of the rule's target: alerts that could not be "
            "delivered, kept with the reason; it has no DLQ of its own.",
        )
