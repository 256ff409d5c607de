"""Prometheus names for CloudWatch metrics: snake_case, base units, ``_total`` for counters.

The rules, with examples from evpm's own configuration:

- family prefix: the namespace in snake_case (``evpm``, ``AWS/Lambda`` -> ``aws_lambda``);
- a counter (a metric's ``Sum`` accumulated period by period) is
  ``<prefix>_<metric>[_<unit>]_total``: ``RecordsReceived`` -> ``evpm_records_received_total``;
- every other statistic is a gauge ``<prefix>_<metric>_<statistic>[_<unit>]``, the unit last
  as Prometheus asks: Lambda's ``Duration`` (milliseconds) at p95 ->
  ``aws_lambda_duration_p95_seconds``; ``SampleCount`` is a count whatever the unit;
- values are converted to base units (seconds, bytes, ratios), so ``IteratorAge`` in
  milliseconds becomes ``aws_lambda_iterator_age_maximum_seconds`` in seconds;
- labels are the dimensions in snake_case (``FunctionName`` -> ``function_name``).
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

__all__ = [
    "BASIC_STATISTICS",
    "PERCENTILE",
    "UNITS",
    "UnitConversion",
    "counter_name",
    "gauge_name",
    "label_name",
    "snake_case",
    "unit_for",
]

BASIC_STATISTICS: Final = ("Sum", "Average", "Maximum", "Minimum", "SampleCount")
PERCENTILE: Final = re.compile(r"^p(100|\d{1,2}(\.\d{1,3})?)$")
"""CloudWatch percentile statistics: ``p50``, ``p95``, ``p99.9``."""


class UnitConversion(NamedTuple):
    suffix: str
    """Base-unit suffix of the Prometheus name ('' for plain numbers)."""
    factor: float
    """Multiply CloudWatch's value by this to get the base unit."""


_KIB = 1024.0
UNITS: Final[dict[str, UnitConversion]] = {
    "None": UnitConversion("", 1.0),
    "Count": UnitConversion("", 1.0),
    "Seconds": UnitConversion("seconds", 1.0),
    "Milliseconds": UnitConversion("seconds", 1e-3),
    "Microseconds": UnitConversion("seconds", 1e-6),
    # CloudWatch does not define its multiples; AWS's own metrics in them (Lambda's memory in
    # Megabytes) are binary, so these are too.
    "Bytes": UnitConversion("bytes", 1.0),
    "Kilobytes": UnitConversion("bytes", _KIB),
    "Megabytes": UnitConversion("bytes", _KIB**2),
    "Gigabytes": UnitConversion("bytes", _KIB**3),
    "Terabytes": UnitConversion("bytes", _KIB**4),
    "Bits": UnitConversion("bytes", 1 / 8),
    "Kilobits": UnitConversion("bytes", _KIB / 8),
    "Megabits": UnitConversion("bytes", _KIB**2 / 8),
    "Gigabits": UnitConversion("bytes", _KIB**3 / 8),
    "Terabits": UnitConversion("bytes", _KIB**4 / 8),
    "Percent": UnitConversion("ratio", 0.01),
    "Count/Second": UnitConversion("per_second", 1.0),
    "Bytes/Second": UnitConversion("bytes_per_second", 1.0),
    "Kilobytes/Second": UnitConversion("bytes_per_second", _KIB),
    "Megabytes/Second": UnitConversion("bytes_per_second", _KIB**2),
    "Gigabytes/Second": UnitConversion("bytes_per_second", _KIB**3),
    "Terabytes/Second": UnitConversion("bytes_per_second", _KIB**4),
    "Bits/Second": UnitConversion("bytes_per_second", 1 / 8),
    "Kilobits/Second": UnitConversion("bytes_per_second", _KIB / 8),
    "Megabits/Second": UnitConversion("bytes_per_second", _KIB**2 / 8),
    "Gigabits/Second": UnitConversion("bytes_per_second", _KIB**3 / 8),
    "Terabits/Second": UnitConversion("bytes_per_second", _KIB**4 / 8),
}
"""Every CloudWatch ``StandardUnit``, with its Prometheus base unit."""

_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_OTHER = re.compile(r"[^a-zA-Z0-9]+")


def snake_case(name: str) -> str:
    """``ApproximateNumberOfMessagesVisible`` -> ``approximate_number_of_messages_visible``.

    Example: ``snake_case("AWS/Lambda") == "aws_lambda"``,
    ``snake_case("CPUUtilization") == "cpu_utilization"``, ``snake_case("p99.9") == "p99_9"``.
    """
    text = _CAMEL.sub(r"\1_\2", _ACRONYM.sub(r"\1_\2", name))
    text = _OTHER.sub("_", text).strip("_").lower()
    if not text:
        raise ValueError(f"{name!r} has no letters or digits to name a metric after")
    return f"_{text}" if text[0].isdigit() else text


def label_name(dimension: str) -> str:
    """The Prometheus label of a CloudWatch dimension: ``FunctionName`` -> ``function_name``."""
    return snake_case(dimension)


def unit_for(unit: str, statistic: str) -> UnitConversion:
    """How ``statistic`` of a metric stored in ``unit`` is named and scaled.

    ``SampleCount`` counts data points, so it carries no unit whatever the metric's.
    """
    if statistic == "SampleCount":
        return UNITS["Count"]
    return UNITS[unit]


def _join(*parts: str) -> str:
    return "_".join(p for p in parts if p)


def counter_name(namespace: str, metric: str, unit: str) -> str:
    """``counter_name("evpm", "RecordsReceived", "Count") == "evpm_records_received_total"``."""
    return _join(snake_case(namespace), snake_case(metric), UNITS[unit].suffix, "total")


def gauge_name(namespace: str, metric: str, statistic: str, unit: str) -> str:
    """``gauge_name("AWS/Lambda", "Duration", "p95", "Milliseconds")
    == "aws_lambda_duration_p95_seconds"``."""
    return _join(
        snake_case(namespace),
        snake_case(metric),
        snake_case(statistic),
        unit_for(unit, statistic).suffix,
    )
