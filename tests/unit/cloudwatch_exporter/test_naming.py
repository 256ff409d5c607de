"""Prometheus names: snake_case, the unit last in base units, _total for counters."""

from __future__ import annotations

import re

import pytest

from cloudwatch_exporter import load_config
from cloudwatch_exporter.naming import UNITS, counter_name, gauge_name, snake_case, unit_for
from evpm.counters import COUNTERS
from tests.unit.cloudwatch_exporter.conftest import ROOT, SHIPPED


@pytest.mark.parametrize(
    ("cloudwatch", "prometheus"),
    [
        ("RecordsReceived", "records_received"),
        ("ApproximateNumberOfMessagesVisible", "approximate_number_of_messages_visible"),
        ("AWS/Lambda", "aws_lambda"),
        ("CPUUtilization", "cpu_utilization"),
        ("FunctionName", "function_name"),
        ("status_class", "status_class"),
        ("p99.9", "p99_9"),
        ("5xxErrors", "_5xx_errors"),
    ],
)
def test_snake_case(cloudwatch: str, prometheus: str) -> None:
    assert snake_case(cloudwatch) == prometheus


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (("evpm", "RecordsReceived", "Count"), "evpm_records_received_total"),
        (("AWS/Lambda", "Duration", "Milliseconds"), "aws_lambda_duration_seconds_total"),
        (("evpm", "Payload", "Kilobytes"), "evpm_payload_bytes_total"),
    ],
)
def test_counter_names_end_in_total_after_the_unit(args: tuple[str, str, str], name: str) -> None:
    assert counter_name(*args) == name


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (("AWS/Lambda", "Duration", "p95", "Milliseconds"), "aws_lambda_duration_p95_seconds"),
        (
            ("AWS/Lambda", "IteratorAge", "Maximum", "Milliseconds"),
            "aws_lambda_iterator_age_maximum_seconds",
        ),
        (
            ("AWS/Lambda", "Duration", "SampleCount", "Milliseconds"),
            "aws_lambda_duration_sample_count",
        ),
        (("evpm", "DiskUsed", "Average", "Percent"), "evpm_disk_used_average_ratio"),
        (
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", "Count"),
            "aws_sqs_approximate_number_of_messages_visible_maximum",
        ),
    ],
)
def test_gauge_names_carry_the_statistic_then_the_unit(args: tuple[str, ...], name: str) -> None:
    assert gauge_name(*args) == name


def test_units_convert_to_base_units() -> None:
    assert unit_for("Milliseconds", "Average") == ("seconds", 1e-3)
    assert unit_for("Microseconds", "p99") == ("seconds", 1e-6)
    assert unit_for("Megabytes", "Maximum") == ("bytes", 1024**2)
    assert unit_for("Bits/Second", "Average") == ("bytes_per_second", 1 / 8)
    assert unit_for("Percent", "Average") == ("ratio", 0.01)
    assert unit_for("Milliseconds", "SampleCount") == ("", 1.0)
    # every suffix is a Prometheus base unit (no milliseconds, kilobytes, percent)
    assert {u.suffix for u in UNITS.values()} <= {
        "",
        "seconds",
        "bytes",
        "ratio",
        "per_second",
        "bytes_per_second",
    }


def test_every_family_of_the_shipped_config_follows_the_conventions() -> None:
    for _, _, family in load_config(SHIPPED).families():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", family.name), family.name
        assert family.name.endswith("_total") == (family.kind == "counter"), family.name
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", label) for label in family.labels)


def test_the_shipped_config_reads_every_metric_the_scorer_publishes() -> None:
    # GIVEN the names the scorer's handler and the domain counters publish
    source = (ROOT / "functions" / "scorer" / "app.py").read_text()
    published = set(re.findall(r'add_metric\(\s*"(\w+)"', source)) | set(COUNTERS)
    assert {"RecordsReceived", "HistoryMissing", "ModelLoadFailures"} <= published
    # THEN the exporter reads each one per service, as a counter
    config = load_config(SHIPPED)
    per_service = {
        metric.name
        for job in config.jobs
        if job.namespace == "evpm" and job.dimensions == ("service",)
        for metric in job.metrics
        if metric.counter
    }
    assert published <= per_service, published - per_service
