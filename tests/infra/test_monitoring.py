"""evpm-monitoring: the ops topic, and one CloudWatch alarm per Prometheus alert rule.

The same conditions are watched twice: locally by Prometheus rules (``monitoring/rules/*.yml``,
evaluated on the exporter's metrics, sent by Alertmanager to ``POST /alerts/webhook``), and on
AWS by the CloudWatch alarms of this stack (the emulator never evaluates percentile or
metric-math alarms). Label convention that ties them: **every Prometheus alerting rule on the
exporter's metrics (label ``datasource: cloudwatch``) carries the label ``cloudwatch_alarm``
naming its CloudWatch twin**, e.g.::

    - alert: EvpmApiLatencyHigh
      expr: evpm:api_latency_p95_seconds:max > 1
      labels: {severity: warning, datasource: cloudwatch, cloudwatch_alarm: evpm-api-latency-p95}

Several rules may name one alarm (a warning and a critical threshold of one condition), but
each such rule names one, each named alarm exists here, and each alarm here has a rule. Rules
about the local monitoring path itself (the exporter is down, CloudWatch scrapes fail: no
``datasource: cloudwatch``) have no twin on AWS, where there is no exporter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infra import constants as c
from infra.config import REPO_ROOT
from tests.infra.helpers import only, resources

STACK = c.MONITORING_STACK
RULES_DIR = REPO_ROOT / "monitoring" / "rules"

API = [{"Name": "service", "Value": "evpm-api"}]
SCORER = [{"Name": "service", "Value": "evpm-scorer"}]
SCORER_FN = [{"Name": "FunctionName", "Value": "evpm-scorer"}]
LIFECYCLE = [{"Name": "service", "Value": "evpm-lifecycle"}]
STATE_MACHINE = [
    {
        "Name": "StateMachineArn",
        "Value": {
            "Fn::Join": [
                "",
                [
                    "arn:",
                    {"Ref": "AWS::Partition"},
                    ":states:",
                    {"Ref": "AWS::Region"},
                    ":",
                    {"Ref": "AWS::AccountId"},
                    ":stateMachine:evpm-model-lifecycle",
                ],
            ]
        },
    }
]


def _outcome(value: str) -> dict[str, str]:
    return {"Name": "outcome", "Value": value}


def _stat(namespace: str, metric: str, dims: list[dict[str, str]], stat: str, period: int):
    return {
        "Metric": {"Dimensions": dims, "MetricName": metric, "Namespace": namespace},
        "Period": period,
        "Stat": stat,
    }


# alarm -> (threshold, comparison, missing data, what it watches)
SIMPLE: dict[str, tuple[float, str, str, dict[str, Any]]] = {
    c.ALARM_API_LATENCY_P95: (
        1000,
        "GreaterThanThreshold",
        "notBreaching",
        {
            "Namespace": "evpm",
            "MetricName": "ApiLatency",
            "Dimensions": API,
            "ExtendedStatistic": "p95",
            "Period": 300,
            "EvaluationPeriods": 2,
        },
    ),
    c.ALARM_SCORER_ERRORS: (
        0,
        "GreaterThanThreshold",
        "notBreaching",
        {
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Dimensions": SCORER_FN,
            "Statistic": "Sum",
            "Period": 300,
        },
    ),
    c.ALARM_STREAM_LAG: (
        60_000,
        "GreaterThanThreshold",
        "notBreaching",
        {
            "Namespace": "AWS/Lambda",
            "MetricName": "IteratorAge",
            "Dimensions": SCORER_FN,
            "Statistic": "Maximum",
            "Period": 300,
        },
    ),
    c.ALARM_NO_TRAFFIC: (
        1,
        "LessThanThreshold",
        "breaching",  # silence is the symptom: no data must fire, not pass
        {
            "Namespace": "evpm",
            "MetricName": "RecordsReceived",
            "Dimensions": SCORER,
            "Statistic": "Sum",
            "Period": 900,
        },
    ),
}

# alarm -> (threshold, expression, {id: metric stat})
MATH: dict[str, tuple[float, str, dict[str, dict[str, Any]]]] = {
    c.ALARM_API_5XX_RATE: (
        0.05,
        "IF(requests > 0, FILL(errors, 0) / requests, 0)",
        {
            "errors": _stat(
                "evpm", "ApiRequests", [*API, {"Name": "status_class", "Value": "5xx"}], "Sum", 300
            ),
            "requests": _stat("evpm", "ApiRequests", API, "Sum", 300),
        },
    ),
    c.ALARM_SCORER_WRITE_FAILURES: (
        0,
        "FILL(writes, 0) + FILL(alerts, 0)",
        {
            "writes": _stat("evpm", "WriteFailures", SCORER, "Sum", 300),
            "alerts": _stat("evpm", "AlertFailures", SCORER, "Sum", 300),
        },
    ),
    c.ALARM_DLQ_GROWING: (
        0,
        "MAX([DIFF(scoring), DIFF(training), DIFF(alerts), DIFF(retrain)])",
        {
            key: _stat(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                [{"Name": "QueueName", "Value": queue}],
                "Maximum",
                900,
            )
            for key, queue in (
                ("scoring", "evpm-scoring-dlq"),
                ("training", "evpm-training-requests-dlq"),
                ("alerts", "evpm-alerts-dlq"),
                ("retrain", "evpm-retrain-dlq"),
            )
        },
    ),
    c.ALARM_ANOMALY_RATE: (
        0.2,
        "IF(written > 0, FILL(flagged, 0) / written, 0)",
        {
            "flagged": _stat("evpm", "AnomaliesFlagged", SCORER, "Sum", 900),
            "written": _stat("evpm", "PredictionsWritten", SCORER, "Sum", 900),
        },
    ),
    c.ALARM_MODEL_LOAD_FAILURES: (
        0,
        "FILL(scorer, 0) + FILL(api, 0)",
        {
            "scorer": _stat("evpm", "ModelLoadFailures", SCORER, "Sum", 300),
            "api": _stat("evpm", "ModelLoadFailures", API, "Sum", 300),
        },
    ),
    # A rollback ends the execution FAILED too (after the smoke test failed): both count; and
    # Step Functions' own counts catch the ends no Lambda step sees (TrainingFailed, timeouts).
    c.ALARM_LIFECYCLE_FAILED: (
        0,
        "FILL(failed, 0) + FILL(rolledback, 0) + FILL(sfnfailed, 0) + FILL(sfntimedout, 0)",
        {
            "failed": _stat(
                "evpm", "LifecycleExecutions", [_outcome("failed"), *LIFECYCLE], "Sum", 300
            ),
            "rolledback": _stat(
                "evpm", "LifecycleExecutions", [_outcome("rolled_back"), *LIFECYCLE], "Sum", 300
            ),
            "sfnfailed": _stat("AWS/States", "ExecutionsFailed", STATE_MACHINE, "Sum", 300),
            "sfntimedout": _stat("AWS/States", "ExecutionsTimedOut", STATE_MACHINE, "Sum", 300),
        },
    ),
    # The drift monitor's per-model counts (functions/monitor): the worst of the three models.
    **{
        alarm: (
            0,
            "MAX([m0, m1, m2])",
            {
                f"m{i}": _stat(
                    "evpm",
                    metric,
                    [
                        {"Name": "model", "Value": model},
                        {"Name": "service", "Value": "evpm-drift-monitor"},
                    ],
                    "Maximum",
                    300,
                )
                for i, model in enumerate(("ev-anomaly", "ev-classifier", "ev-rul"))
            },
        )
        for alarm, metric in (
            (c.ALARM_DRIFT_DETECTED, "DriftColumnsDrifted"),
            (c.ALARM_QUALITY_DEGRADED, "DriftQualityProblems"),
        )
    },
}


def _alarms(template) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in resources(template(STACK), "AWS::CloudWatch::Alarm").values()
    }


def _topic(template) -> str:
    topic_id, _ = only(template(STACK), "AWS::SNS::Topic")
    return topic_id


def test_every_alarm_is_specified_here(template) -> None:
    # GIVEN the alarms the stack synthesises
    # THEN they are exactly the agreed ones, each checked by a case below
    assert set(_alarms(template)) == set(c.ALARMS) == set(SIMPLE) | set(MATH)


@pytest.mark.parametrize("name", sorted(SIMPLE))
def test_simple_alarm_watches_its_metric(template, name: str) -> None:
    props = _alarms(template)[name]
    threshold, comparison, missing, watched = SIMPLE[name]
    assert {k: props.get(k) for k in watched} == watched
    assert (props["Threshold"], props["ComparisonOperator"]) == (threshold, comparison)
    assert props["TreatMissingData"] == missing
    assert props["EvaluationPeriods"] == watched.get("EvaluationPeriods", 1)
    assert "Metrics" not in props


@pytest.mark.parametrize("name", sorted(MATH))
def test_math_alarm_watches_its_expression(template, name: str) -> None:
    props = _alarms(template)[name]
    threshold, expression, inputs = MATH[name]
    [result] = [m for m in props["Metrics"] if m.get("ReturnData", True)]
    assert result["Expression"] == expression
    used = {m["Id"]: m["MetricStat"] for m in props["Metrics"] if "MetricStat" in m}
    assert used == inputs
    assert (props["Threshold"], props["ComparisonOperator"]) == (
        threshold,
        "GreaterThanThreshold",
    )
    assert props["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("name", c.ALARMS)
def test_every_alarm_notifies_the_ops_topic_when_it_fires_and_recovers(template, name: str) -> None:
    props = _alarms(template)[name]
    topic = {"Ref": _topic(template)}
    assert props["AlarmActions"] == [topic]
    assert props["OKActions"] == [topic]


def test_ops_topic_is_encrypted_with_a_key_cloudwatch_may_use(template) -> None:
    tpl = template(STACK)
    _, topic = only(tpl, "AWS::SNS::Topic")
    key_id, key = only(tpl, "AWS::KMS::Key")
    assert topic["Properties"]["TopicName"] == c.OPS_ALERTS_TOPIC
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    [cloudwatch] = [s for s in statements if s.get("Sid") == "CloudWatchAlarmsPublish"]
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(cloudwatch["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert cloudwatch["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }
    # AND the topic refuses publishing without TLS
    [policy] = resources(tpl, "AWS::SNS::TopicPolicy").values()
    [deny] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


# --- the Prometheus rules and their CloudWatch twins ---------------------------------------


def _rule_files() -> list[Path]:
    return sorted([*RULES_DIR.glob("*.yml"), *RULES_DIR.glob("*.yaml")])


def _alert_rules() -> list[tuple[str, dict[str, Any]]]:
    """``(file, rule)`` for every alerting rule that has a twin on AWS: those on CloudWatch's
    metrics, and any that names an alarm (recording rules have no ``alert``)."""
    found = []
    for path in _rule_files():
        document = yaml.safe_load(path.read_text()) or {}
        for group in document.get("groups", []):
            for rule in group.get("rules", []):
                labels = rule.get("labels") or {}
                twinned = labels.get("datasource") == "cloudwatch" or "cloudwatch_alarm" in labels
                if "alert" in rule and twinned:
                    found.append((path.name, rule))
    return found


@pytest.fixture
def alert_rules() -> list[tuple[str, dict[str, Any]]]:
    if not _rule_files():
        pytest.skip(f"no Prometheus rule files in {RULES_DIR} yet")
    rules = _alert_rules()
    assert rules, f"the rule files in {RULES_DIR} hold no alerting rule on CloudWatch's metrics"
    return rules


def test_every_prometheus_alert_names_its_cloudwatch_twin(template, alert_rules) -> None:
    # GIVEN every alerting rule Prometheus evaluates locally, and the alarms for AWS
    alarms = set(_alarms(template))
    # THEN each rule names an alarm that exists, in its cloudwatch_alarm label
    missing = [
        f"{file}: {rule['alert']} has no labels.cloudwatch_alarm"
        for file, rule in alert_rules
        if not (rule.get("labels") or {}).get("cloudwatch_alarm")
    ]
    unknown = [
        f"{file}: {rule['alert']} names {rule['labels']['cloudwatch_alarm']!r}, not an alarm"
        for file, rule in alert_rules
        if (rule.get("labels") or {}).get("cloudwatch_alarm")
        and rule["labels"]["cloudwatch_alarm"] not in alarms
    ]
    assert missing + unknown == [], "\n".join(missing + unknown)


def test_every_cloudwatch_alarm_has_a_prometheus_rule(template, alert_rules) -> None:
    named = {(rule.get("labels") or {}).get("cloudwatch_alarm") for _, rule in alert_rules}
    assert set(_alarms(template)) - named == set()
