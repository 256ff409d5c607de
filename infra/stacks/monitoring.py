"""``evpm-monitoring``: the people's topic for ops alerts, and the CloudWatch alarms on AWS.

Locally, Prometheus evaluates the rules in ``monitoring/rules/`` on the exporter's metrics and
Alertmanager posts to the API's webhook, which publishes to this topic. On AWS the same
conditions are CloudWatch alarms publishing here directly (the emulator evaluates only simple
alarms, never percentile or metric-math ones, hence the two paths). Each Prometheus rule names
its alarm in the label ``cloudwatch_alarm``; ``tests/infra/test_monitoring.py`` checks that
every rule has its twin here.

Metrics are referred to by name (namespace, metric, dimensions), not through the constructs
that emit them: this stack depends on no other, and the names are the contract in
``infra/constants.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_cdk import ArnFormat, CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns

from infra import constants as c

if TYPE_CHECKING:
    from constructs import Construct

    from infra.config import InfraSettings

_FIVE_MIN = Duration.minutes(5)
# Every dead-letter queue of the stacks (the Prometheus rule's queue_name=~"evpm-.*dlq").
DLQS = {
    "scoring": c.SCORING_DLQ,
    "training": f"{c.TRAINING_QUEUE}-dlq",
    "alerts": c.ALERTS_DLQ,
    "retrain": c.RETRAIN_DLQ,
}
_GT = cw.ComparisonOperator.GREATER_THAN_THRESHOLD
_NOT_BREACHING = cw.TreatMissingData.NOT_BREACHING


def _evpm(metric: str, statistic: str, period: Duration = _FIVE_MIN, **dims: str) -> cw.Metric:
    return cw.Metric(
        namespace=c.METRICS_NAMESPACE,
        metric_name=metric,
        dimensions_map=dims,
        statistic=statistic,
        period=period,
    )


def _lambda(metric: str, statistic: str) -> cw.Metric:
    return cw.Metric(
        namespace="AWS/Lambda",
        metric_name=metric,
        dimensions_map={"FunctionName": c.SCORER_FUNCTION},
        statistic=statistic,
        period=_FIVE_MIN,
    )


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: what it watches, when it fires, and why someone should care."""

    name: str
    metric: cw.IMetric
    threshold: float
    description: str
    comparison: cw.ComparisonOperator = _GT
    missing: cw.TreatMissingData = _NOT_BREACHING
    evaluation_periods: int = 1


def _states(metric: str, state_machine_arn: str) -> cw.Metric:
    return cw.Metric(
        namespace="AWS/States",
        metric_name=metric,
        dimensions_map={"StateMachineArn": state_machine_arn},
        statistic="Sum",
        period=_FIVE_MIN,
    )


def alarm_specs(*, state_machine_arn: str) -> list[AlarmSpec]:
    """The alarms, one per Prometheus rule (same conditions, CloudWatch's metrics).

    ``state_machine_arn`` is the lifecycle's, built from its name (no reference to the
    lifecycle stack: this one depends on none)."""
    api = {"service": c.API_FUNCTION}
    scorer = {"service": c.SCORER_FUNCTION}
    lifecycle = {"service": c.LIFECYCLE_FUNCTION}
    return [
        AlarmSpec(
            c.ALARM_API_LATENCY_P95,
            _evpm("ApiLatency", "p95", **api),
            c.API_LATENCY_P95_BUDGET_MS,
            f"API p95 latency over {c.API_LATENCY_P95_BUDGET_MS} ms for 10 min",
            evaluation_periods=2,
        ),
        AlarmSpec(
            c.ALARM_API_5XX_RATE,
            cw.MathExpression(
                expression="IF(requests > 0, FILL(errors, 0) / requests, 0)",
                using_metrics={
                    "errors": _evpm("ApiRequests", "Sum", **api, status_class="5xx"),
                    "requests": _evpm("ApiRequests", "Sum", **api),
                },
                label="share of API requests answered 5xx",
                period=_FIVE_MIN,
            ),
            c.API_5XX_RATE_MAX,
            f"over {c.API_5XX_RATE_MAX:.0%} of API requests answered 5xx for 5 min",
        ),
        AlarmSpec(
            c.ALARM_SCORER_ERRORS,
            _lambda("Errors", "Sum"),
            0,
            "the stream scorer failed invocations (its batches are retried, then parked)",
        ),
        AlarmSpec(
            c.ALARM_SCORER_WRITE_FAILURES,
            cw.MathExpression(
                expression="FILL(writes, 0) + FILL(alerts, 0)",
                using_metrics={
                    "writes": _evpm("WriteFailures", "Sum", **scorer),
                    "alerts": _evpm("AlertFailures", "Sum", **scorer),
                },
                label="records the scorer could not store, park or alert on",
                period=_FIVE_MIN,
            ),
            0,
            "the scorer could not store predictions, park records or publish alerts; the "
            "records went back to Kinesis for a retry",
        ),
        AlarmSpec(
            c.ALARM_DLQ_GROWING,
            cw.MathExpression(
                expression="MAX([" + ", ".join(f"DIFF({key})" for key in DLQS) + "])",
                using_metrics={
                    key: cw.Metric(
                        namespace="AWS/SQS",
                        metric_name="ApproximateNumberOfMessagesVisible",
                        dimensions_map={"QueueName": queue},
                        statistic="Maximum",
                        period=Duration.minutes(c.DLQ_GROWTH_MINUTES),
                    )
                    for key, queue in DLQS.items()
                },
                label="most messages added to one evpm dead-letter queue",
                period=Duration.minutes(c.DLQ_GROWTH_MINUTES),
            ),
            0,
            f"an evpm dead-letter queue grew in {c.DLQ_GROWTH_MINUTES} min: records that could "
            "not be scored, training requests that failed, or alerts that were not delivered",
        ),
        AlarmSpec(
            c.ALARM_STREAM_LAG,
            _lambda("IteratorAge", "Maximum"),
            c.STREAM_LAG_MAX_MS,
            f"the scorer reads records over {c.STREAM_LAG_MAX_MS // 1000} s after they arrived",
        ),
        AlarmSpec(
            c.ALARM_NO_TRAFFIC,
            _evpm("RecordsReceived", "Sum", Duration.minutes(c.NO_TRAFFIC_MINUTES), **scorer),
            1,
            f"no telemetry record reached the scorer in {c.NO_TRAFFIC_MINUTES} min",
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            missing=cw.TreatMissingData.BREACHING,
        ),
        AlarmSpec(
            c.ALARM_ANOMALY_RATE,
            cw.MathExpression(
                expression="IF(written > 0, FILL(flagged, 0) / written, 0)",
                using_metrics={
                    "flagged": _evpm("AnomaliesFlagged", "Sum", Duration.minutes(15), **scorer),
                    "written": _evpm("PredictionsWritten", "Sum", Duration.minutes(15), **scorer),
                },
                label="share of stored predictions flagged as anomalies",
                period=Duration.minutes(15),
            ),
            c.ANOMALY_RATE_MAX,
            f"over {c.ANOMALY_RATE_MAX:.0%} of predictions flagged as anomalies for 15 min "
            "(a fleet-wide fault, or a bad anomaly model or input)",
        ),
        AlarmSpec(
            c.ALARM_MODEL_LOAD_FAILURES,
            cw.MathExpression(
                expression="FILL(scorer, 0) + FILL(api, 0)",
                using_metrics={
                    "scorer": _evpm("ModelLoadFailures", "Sum", **scorer),
                    "api": _evpm("ModelLoadFailures", "Sum", **api),
                },
                label="failed loads of the pinned models (older versions keep serving)",
                period=_FIVE_MIN,
            ),
            0,
            "a pinned model failed to load in the scorer or the API; older versions serve",
        ),
        AlarmSpec(
            c.ALARM_LIFECYCLE_FAILED,
            cw.MathExpression(
                # The lifecycle function counts the ends it sees; Step Functions' own counts
                # also catch those no Lambda step follows (TrainingFailed, a timeout).
                expression="FILL(failed, 0) + FILL(rolledback, 0) + FILL(sfnfailed, 0)"
                " + FILL(sfntimedout, 0)",
                using_metrics={
                    "failed": _evpm("LifecycleExecutions", "Sum", **lifecycle, outcome="failed"),
                    "rolledback": _evpm(
                        "LifecycleExecutions", "Sum", **lifecycle, outcome="rolled_back"
                    ),
                    "sfnfailed": _states("ExecutionsFailed", state_machine_arn),
                    "sfntimedout": _states("ExecutionsTimedOut", state_machine_arn),
                },
                label="lifecycle executions that ended FAILED",
                period=_FIVE_MIN,
            ),
            0,
            "a model lifecycle execution failed: the gate refused, a step failed, or the smoke "
            "test failed and the promotion was rolled back (`evpm lifecycle history`)",
        ),
        AlarmSpec(
            c.ALARM_DRIFT_DETECTED,
            _any_model("DriftColumnsDrifted", "columns drifted, most of any served model"),
            0,
            "the drift monitor found inputs or outputs of a served model that no longer look "
            "like its training data (`evpm drift status`, `evpm drift report`); a DriftDetected "
            "event went to the retraining trigger (`evpm drift triggers`)",
        ),
        AlarmSpec(
            c.ALARM_QUALITY_DEGRADED,
            _any_model("DriftQualityProblems", "quality problems, most of any served model"),
            0,
            "outcomes show a served model doing worse than on its held-out rows, or failing in "
            "a new way (labels drifted): `evpm drift status`; QualityDegraded went to the "
            "retraining trigger",
        ),
    ]


def _any_model(metric: str, label: str) -> cw.MathExpression:
    """The largest of a per-model drift count over the three served models."""
    return cw.MathExpression(
        expression="MAX([" + ", ".join(f"m{i}" for i in range(len(c.MODEL_NAMES))) + "])",
        using_metrics={
            f"m{i}": _evpm(metric, "Maximum", service=c.MONITOR_FUNCTION, model=name)
            for i, name in enumerate(c.MODEL_NAMES)
        },
        label=label,
        period=_FIVE_MIN,
    )


class MonitoringStack(Stack):
    """Topic ``evpm-ops-alerts`` (KMS-encrypted, TLS only) and one alarm per alert rule.

    The topic's key is a customer-managed one because CloudWatch cannot publish to a topic
    encrypted with the AWS-managed SNS key; its policy lets CloudWatch use it for this account.
    Every alarm notifies the topic when it fires and when it recovers (as Alertmanager sends
    firing and resolved).
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, settings: InfraSettings, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        key = kms.Key(
            self,
            "OpsAlertsKey",
            alias=c.OPS_ALERTS_KEY_ALIAS,
            description="encrypts the evpm-ops-alerts topic",
            enable_key_rotation=True,
            removal_policy=settings.removal_policy,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        self.ops_topic_key: kms.IKey = key
        self.ops_topic = sns.Topic(
            self,
            "OpsAlerts",
            topic_name=c.OPS_ALERTS_TOPIC,
            display_name="evpm ops alerts",
            master_key=key,
            enforce_ssl=True,
        )
        action = cw_actions.SnsAction(self.ops_topic)
        self.alarms: dict[str, cw.Alarm] = {}
        state_machine_arn = self.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=c.LIFECYCLE_STATE_MACHINE,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        for spec in alarm_specs(state_machine_arn=state_machine_arn):
            alarm = cw.Alarm(
                self,
                f"Alarm-{spec.name}",
                alarm_name=spec.name,
                alarm_description=spec.description,
                metric=spec.metric,
                threshold=spec.threshold,
                comparison_operator=spec.comparison,
                evaluation_periods=spec.evaluation_periods,
                treat_missing_data=spec.missing,
            )
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)
            self.alarms[spec.name] = alarm

        CfnOutput(self, c.OUT_OPS_ALERTS_TOPIC_ARN, value=self.ops_topic.topic_arn)
