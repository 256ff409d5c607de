"""Fixtures for the exporter: moto's CloudWatch, a settable clock, and a scrape reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from cloudwatch_exporter import CloudWatchCollector, ExporterConfig

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "monitoring" / "exporter.yaml"
T0 = 1_800_000_000 // 60 * 60 + 30.0
"""30 s into a minute: scrapes at T0 + k * 60 read whole periods."""


@dataclass
class Clock:
    now: float = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cloudwatch(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudwatch", region_name="us-east-1")


@pytest.fixture
def put(cloudwatch: Any) -> Callable[..., None]:
    """``put(name, value, at, namespace=..., unit=..., **dimensions)``."""

    def put(
        name: str,
        value: float,
        at: float,
        *,
        namespace: str = "evpm",
        unit: str = "Count",
        **dimensions: str,
    ) -> None:
        cloudwatch.put_metric_data(
            Namespace=namespace,
            MetricData=[
                {
                    "MetricName": name,
                    "Value": value,
                    "Unit": unit,
                    "Timestamp": datetime.fromtimestamp(at, UTC),
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                }
            ],
        )

    return put


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(collector: CloudWatchCollector) -> tuple[str, Samples]:
    """One scrape through prometheus_client's exposition: (text, {(name, labels): value})."""
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, samples


def config(**jobs: Any) -> ExporterConfig:
    """A one-namespace config: ``config(jobs=[...])`` with evpm's allow-list."""
    return ExporterConfig.model_validate(
        {
            "allowed_dimensions": {
                "evpm": ["service", "route", "status_class", "outcome"],
                "AWS/Lambda": ["FunctionName"],
            },
            **jobs,
        }
    )
