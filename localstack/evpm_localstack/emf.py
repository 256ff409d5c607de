"""Embedded Metric Format (EMF) log lines -> CloudWatch metric data, with CloudWatch's checks.

Why: on AWS, CloudWatch Logs turns every log event that is an EMF document into metrics (what
aws-lambda-powertools ``Metrics`` prints is such a document); the emulator only stored the
line. This module is the pure half of doing it here: one log line in, the ``PutMetricData``
datums it stands for out. No LocalStack import, so it is unit-tested in the project venv.

What a document looks like (the CloudWatch EMF specification)::

    {"_aws": {"Timestamp": 1700000000000,                       # ms since the epoch
              "CloudWatchMetrics": [{"Namespace": "evpm",
                                     "Dimensions": [["service"], ["service", "model"]],
                                     "Metrics": [{"Name": "Latency", "Unit": "Milliseconds",
                                                  "StorageResolution": 1}]}]},
     "service": "scorer", "model": "ev-anomaly",              # dimension values
     "Latency": [12.5, 14.0]}                                 # a number or up to 100 numbers

Every metric of a directive is published once per dimension set, each value of an array as a
sample of its own. Statistic sets are not part of EMF (powertools never prints one): an object
value is refused like any other non-number.

A line is a *candidate* when it is a JSON object mentioning ``"_aws"`` (as CloudWatch, only a
whole log event counts: a logger's ``[INFO] ... {json}`` line is not one). A candidate that is
not valid JSON is a parsing error; a document whose ``_aws`` breaks a rule below is a
validation error, and the whole document is dropped (CloudWatch counts both kinds in
``AWS/Logs`` ``EMFParsingErrors`` / ``EMFValidationErrors`` and extracts nothing from it).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, TypedDict

MAX_DIMENSIONS = 30  # per dimension set (PutMetricData's limit per metric)
MAX_METRICS = 100  # per directive
MAX_VALUES = 100  # per metric array
MAX_NAME = 255
MAX_DIMENSION_VALUE = 1024
MAX_MAGNITUDE = 2.0**360  # PutMetricData refuses larger values
MAX_AGE_S = 14 * 24 * 3600  # timestamps older than two weeks are refused
MAX_AHEAD_S = 2 * 3600  # ... and more than two hours ahead
UNITS = frozenset((
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second",
    "Terabits/Second", "Count/Second", "None",
))
_NAMESPACE = re.compile(r"[0-9A-Za-z.\-_/#: ]+")


class Dimension(TypedDict):
    Name: str
    Value: str


class Datum(TypedDict):
    """One ``PutMetricData`` ``MetricDatum``; ``Timestamp`` in seconds since the epoch."""

    MetricName: str
    Dimensions: list[Dimension]
    Timestamp: float
    Unit: str
    Values: list[float]
    StorageResolution: NotRequired[int]


@dataclass(frozen=True)
class Metric:
    namespace: str
    datum: Datum


class EmfError(ValueError):
    """A log line that claims to be EMF but is not valid: nothing is extracted from it."""

    def __init__(self, reason: str, kind: Literal["parsing", "validation"] = "validation"):
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass
class Extracted:
    """What a function's log lines held: metrics, and one error per rejected document."""

    metrics: list[Metric] = field(default_factory=list)
    errors: list[EmfError] = field(default_factory=list)


def is_candidate(line: str) -> bool:
    """Cheap pre-check run on every log line: a JSON object that mentions ``"_aws"``."""
    return line.startswith("{") and '"_aws"' in line


def extract(lines: Iterable[str], *, now: float | None = None) -> Extracted:
    """The metrics of every EMF document among ``lines``; invalid documents become errors."""
    out = Extracted()
    for line in lines:
        text = line.strip()
        if not is_candidate(text):
            continue
        try:
            metrics = parse_line(text, now=now)
        except EmfError as error:
            out.errors.append(error)
            continue
        if metrics:
            out.metrics.extend(metrics)
    return out


def parse_line(line: str, *, now: float | None = None) -> list[Metric] | None:
    """The metrics of one log line; ``None`` if it is no EMF document.

    Raises :class:`EmfError` when the line claims to be EMF and is malformed.
    """
    text = line.strip()
    if not is_candidate(text):
        return None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise EmfError(f"not valid JSON: {exc}", "parsing") from None
    if not isinstance(document, dict) or "_aws" not in document:
        return None  # "_aws" only inside a value: an ordinary structured log line
    return parse_document(document, now=now)


def parse_document(document: dict[str, Any], *, now: float | None = None) -> list[Metric]:
    """The metrics of a parsed EMF document (one per metric, dimension set and directive)."""
    meta = document["_aws"]
    if not isinstance(meta, dict):
        raise EmfError("_aws is not an object")
    timestamp = _timestamp(meta.get("Timestamp"), time.time() if now is None else now)
    directives = meta.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        raise EmfError("_aws.CloudWatchMetrics is missing or not an array")
    metrics: list[Metric] = []
    for index, directive in enumerate(directives):
        where = f"CloudWatchMetrics[{index}]"
        if not isinstance(directive, dict):
            raise EmfError(f"{where} is not an object")
        namespace = _namespace(directive.get("Namespace"), where)
        dimension_sets = _dimension_sets(directive.get("Dimensions"), document, where)
        definitions = directive.get("Metrics")
        if not isinstance(definitions, list):
            raise EmfError(f"{where}.Metrics is missing or not an array")
        if len(definitions) > MAX_METRICS:
            raise EmfError(f"{where} has {len(definitions)} metrics (at most {MAX_METRICS})")
        for definition in definitions:
            name, unit, resolution = _definition(definition, where)
            values = _values(document.get(name, _MISSING), name)
            for dimensions in dimension_sets:
                datum: Datum = {"MetricName": name, "Dimensions": list(dimensions),
                                "Timestamp": timestamp, "Unit": unit, "Values": values}
                if resolution is not None:
                    datum["StorageResolution"] = resolution
                metrics.append(Metric(namespace, datum))
    return metrics


_MISSING = object()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _timestamp(value: Any, now: float) -> float:
    if not _is_number(value) or not math.isfinite(value):
        raise EmfError("_aws.Timestamp is missing or not a number of milliseconds")
    seconds = value / 1000.0
    if seconds < now - MAX_AGE_S or seconds > now + MAX_AHEAD_S:
        raise EmfError(f"_aws.Timestamp {value} is more than 14 days old or 2 hours ahead")
    return seconds


def _namespace(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise EmfError(f"{where}.Namespace is missing or not a string")
    if len(value) > MAX_NAME or not _NAMESPACE.fullmatch(value) or value.startswith(":"):
        raise EmfError(f"{where}.Namespace {value!r} is not a valid namespace")
    if value.startswith("AWS/"):
        raise EmfError(f"{where}.Namespace {value!r}: AWS/ namespaces are reserved")
    return value


def _dimension_sets(value: Any, document: dict[str, Any],
                    where: str) -> list[list[Dimension]]:
    if not isinstance(value, list):
        raise EmfError(f"{where}.Dimensions is missing or not an array of arrays")
    if not value:
        return [[]]  # no dimension set: the metrics are published without dimensions
    sets: list[list[Dimension]] = []
    for names in value:
        if not isinstance(names, list):
            raise EmfError(f"{where}.Dimensions is not an array of arrays")
        if len(names) > MAX_DIMENSIONS:
            raise EmfError(f"{where} has a dimension set of {len(names)} dimensions "
                           f"(at most {MAX_DIMENSIONS})")
        dimensions: list[Dimension] = []
        for name in names:
            if not isinstance(name, str) or not _valid_text(name, MAX_NAME) \
                    or name.startswith(":"):
                raise EmfError(f"{where} has an invalid dimension name {name!r}")
            dim_value = document.get(name)
            if not isinstance(dim_value, str):
                raise EmfError(f"dimension {name!r} has no string value in the document")
            if not _valid_text(dim_value, MAX_DIMENSION_VALUE):
                raise EmfError(f"dimension {name!r} has an invalid value {dim_value[:80]!r}")
            dimensions.append({"Name": name, "Value": dim_value})
        sets.append(dimensions)
    return sets


def _valid_text(text: str, limit: int) -> bool:
    """1..limit printable ASCII characters, not all blank (CloudWatch's rule for names)."""
    return 0 < len(text) <= limit and text.isascii() and text.isprintable() \
        and not text.isspace()


def _definition(value: Any, where: str) -> tuple[str, str, int | None]:
    if not isinstance(value, dict):
        raise EmfError(f"{where}.Metrics has an entry that is not an object")
    name = value.get("Name")
    if not isinstance(name, str) or not _valid_text(name, MAX_NAME):
        raise EmfError(f"{where}.Metrics has an entry with an invalid Name {name!r}")
    unit = value.get("Unit", "None")
    if unit not in UNITS:
        raise EmfError(f"metric {name!r} has an unknown unit {unit!r}")
    resolution = value.get("StorageResolution")
    if resolution is not None and (not _is_number(resolution) or resolution not in (1, 60)):
        raise EmfError(f"metric {name!r} has StorageResolution {resolution!r} (1 or 60)")
    return name, unit, None if resolution is None else int(resolution)


def _values(value: Any, name: str) -> list[float]:
    if value is _MISSING or value is None:
        raise EmfError(f"metric {name!r} has no value")
    items = value if isinstance(value, list) else [value]
    if not items:
        raise EmfError(f"metric {name!r} has no value (empty array)")
    if len(items) > MAX_VALUES:
        raise EmfError(f"metric {name!r} has {len(items)} values (at most {MAX_VALUES})")
    values: list[float] = []
    for item in items:
        if not _is_number(item):
            raise EmfError(f"metric {name!r} has a non-numeric value {item!r:.80}")
        if isinstance(item, float) and not math.isfinite(item):
            raise EmfError(f"metric {name!r} has a value {item!r} (NaN and infinity are refused)")
        if abs(item) > MAX_MAGNITUDE:
            raise EmfError(f"metric {name!r} has a value out of range (|v| > 2^360)")
        values.append(float(item))
    return values
