"""CloudWatch -> Prometheus exporter for evpm (``python -m cloudwatch_exporter --help``).

Reads the metrics evpm's functions publish to CloudWatch (EMF, namespace ``evpm``) and those
AWS publishes for Lambda and SQS, and serves them on ``/metrics`` with Prometheus names
(:mod:`cloudwatch_exporter.naming`), for Prometheus' rules in ``monitoring/rules``. What it reads
is a YAML file (:mod:`cloudwatch_exporter.config`) whose check refuses unbounded dimensions.
"""

from __future__ import annotations

from cloudwatch_exporter.collector import CloudWatchCollector, Series
from cloudwatch_exporter.config import ExporterConfig, Family, JobConfig, MetricConfig, load_config
from cloudwatch_exporter.exceptions import ConfigError

__all__ = [
    "CloudWatchCollector",
    "ConfigError",
    "ExporterConfig",
    "Family",
    "JobConfig",
    "MetricConfig",
    "Series",
    "load_config",
]
