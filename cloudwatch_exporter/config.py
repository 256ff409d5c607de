"""The exporter's configuration: what to read from CloudWatch, and what never to export.

A YAML file in the style of the Prometheus community's cloudwatch_exporter and YACE
(``monitoring/exporter.yaml`` is evpm's)::

    region: us-east-1
    period: 60          # seconds per CloudWatch data point (defaults for every job)
    length: 300         # how far back each request looks
    delay: 60           # how long before a period counts as complete (CloudWatch's lag)
    allowed_dimensions: # per namespace: the only dimensions that may become labels
      evpm: [service, route, status_class, outcome]
    jobs:
      - name: scorer
        namespace: evpm
        dimensions: [service]            # the exact dimension set of the series
        dimension_select: {service: [evpm-scorer]}
        metrics:
          - {name: RecordsReceived, statistics: [Sum], counter: true}

Why an allow-list: every distinct set of dimension values is one Prometheus series, kept for
weeks. A dimension such as ``vehicle_id`` would make one series per vehicle, without bound,
and take Prometheus down with the fleet's growth. So a job may use only dimensions its
namespace's allow-list names, and no allow-list may name a dimension that identifies single
entities (:data:`UNBOUNDED_DIMENSIONS`: vehicles, requests, traces, raw paths, ...): that
refusal cannot be configured away. The values of allowed dimensions are bounded at run time
too (``max_series`` per metric).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cloudwatch_exporter.exceptions import ConfigError
from cloudwatch_exporter.naming import (
    BASIC_STATISTICS,
    PERCENTILE,
    UNITS,
    UnitConversion,
    counter_name,
    gauge_name,
    label_name,
    unit_for,
)

__all__ = [
    "RESERVED_LABELS",
    "UNBOUNDED_DIMENSIONS",
    "ExporterConfig",
    "Family",
    "JobConfig",
    "MetricConfig",
    "load_config",
]

UNBOUNDED_DIMENSIONS: Final = frozenset(
    {
        # one per vehicle
        "vehicleid",
        "vehicle",
        "vin",
        "partitionkey",
        # one per request, message or record
        "requestid",
        "traceid",
        "spanid",
        "correlationid",
        "messageid",
        "recordid",
        "eventid",
        "sequencenumber",
        "executionarn",
        "executionname",
        "executionid",
        # one per caller
        "sessionid",
        "userid",
        "username",
        "customerid",
        "apikey",
        "apikeyid",
        "email",
        "ip",
        "ipaddress",
        "sourceip",
        "clientip",
        # one per moment or per raw URL (use the route template instead)
        "timestamp",
        "ts",
        "time",
        "date",
        "path",
        "url",
        "querystring",
        # anything called just an id
        "id",
        "uuid",
        "guid",
    }
)
"""Dimension names (lower case, letters and digits only) that identify single entities: never
exported, whatever ``allowed_dimensions`` says."""

RESERVED_LABELS: Final = frozenset({"job", "instance", "le", "quantile"})
"""Labels Prometheus sets or gives a meaning to: no dimension may become one."""

_MAX_QUERY_PERIODS: Final = 1440
"""Periods one query may span (``length / period``): a day of minutes."""


def _normalized(dimension: str) -> str:
    return re.sub(r"[^a-z0-9]", "", dimension.lower())


def _statistic(value: str) -> str:
    if value in BASIC_STATISTICS or PERCENTILE.match(value):
        return value
    raise ValueError(
        f"statistic {value!r} is not one of {', '.join(BASIC_STATISTICS)} or a percentile pNN"
        " (p50, p95, p99.9)"
    )


def _unit(value: str) -> str:
    if value in UNITS:
        return value
    raise ValueError(f"unit {value!r} is not a CloudWatch unit; one of: {', '.join(UNITS)}")


Statistic = Annotated[str, AfterValidator(_statistic)]
Unit = Annotated[str, AfterValidator(_unit)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Family:
    """One Prometheus metric family the exporter produces."""

    name: str
    kind: Literal["counter", "gauge"]
    labels: tuple[str, ...]
    help: str
    statistic: str
    conversion: UnitConversion


class MetricConfig(_Strict):
    """One CloudWatch metric of a job, and the statistics to read of it."""

    name: str = Field(min_length=1, max_length=255, description="CloudWatch MetricName")
    statistics: tuple[Statistic, ...] = ("Sum",)
    unit: Unit = Field(
        default="None",
        description="the unit CloudWatch holds the values in; exported in its base unit",
    )
    counter: bool = Field(
        default=False,
        description="export Sum as a monotonic counter (<name>_total), adding each complete "
        "period once; the other statistics stay gauges",
    )
    help: str | None = Field(default=None, max_length=500)

    @field_validator("statistics")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one statistic")
        if len(set(value)) != len(value):
            raise ValueError(f"statistics repeat: {list(value)}")
        return value

    @model_validator(mode="after")
    def _counter_needs_sum(self) -> MetricConfig:
        if self.counter and "Sum" not in self.statistics:
            raise ValueError(f"metric {self.name}: counter: true needs the Sum statistic")
        return self


class JobConfig(_Strict):
    """Metrics of one namespace that share one dimension set."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=64)
    namespace: str = Field(min_length=1, max_length=255)
    dimensions: tuple[str, ...] = Field(
        default=(),
        description="the exact dimension names of the series (CloudWatch matches "
        "a metric by its whole dimension set)",
    )
    dimension_select: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="keep only series with these dimension values"
    )
    dimension_select_regex: dict[str, str] = Field(
        default_factory=dict, description="keep only series whose dimension value matches"
    )
    metrics: tuple[MetricConfig, ...]
    period: int = Field(default=60, ge=1)
    length: int = Field(default=300, ge=1)
    delay: int = Field(default=60, ge=0)
    max_series: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="series per metric at most; more are dropped (and counted) at run time",
    )

    @field_validator("metrics")
    @classmethod
    def _some_metrics(cls, value: tuple[MetricConfig, ...]) -> tuple[MetricConfig, ...]:
        if not value:
            raise ValueError("name at least one metric")
        return value

    @field_validator("period")
    @classmethod
    def _period(cls, value: int) -> int:
        if value in (1, 5, 10, 30) or value % 60 == 0:
            return value
        raise ValueError(f"period {value} s: CloudWatch takes 1, 5, 10, 30 or a multiple of 60")

    @model_validator(mode="after")
    def _consistent(self) -> JobConfig:
        problems = []
        if self.length < self.period or self.length % self.period:
            problems.append(f"length {self.length} s must be a multiple of period {self.period} s")
        elif self.length // self.period > _MAX_QUERY_PERIODS:
            problems.append(f"length {self.length} s spans more than {_MAX_QUERY_PERIODS} periods")
        if len(set(self.dimensions)) != len(self.dimensions):
            problems.append(f"dimensions repeat: {list(self.dimensions)}")
        for key in (*self.dimension_select, *self.dimension_select_regex):
            if key not in self.dimensions:
                problems.append(f"selects on {key!r}, which is not one of its dimensions")
        for key, pattern in self.dimension_select_regex.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(f"dimension_select_regex {key}: {exc}")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            problems.append(f"metrics repeat: {names}")
        labels = [label_name(d) for d in self.dimensions]
        if len(set(labels)) != len(labels):
            problems.append(f"dimensions {list(self.dimensions)} give the same label twice")
        for dimension, label in zip(self.dimensions, labels, strict=True):
            if label in RESERVED_LABELS or label.startswith("__"):
                problems.append(f"dimension {dimension!r} would become the reserved label {label}")
        if problems:
            raise ValueError(f"job {self.name}: " + "; ".join(problems))
        return self

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label_name(d) for d in self.dimensions)

    def families(self, metric: MetricConfig) -> list[Family]:
        """The Prometheus families of ``metric``: a counter for Sum (if ``counter``), a gauge
        for each other statistic."""
        out = []
        lead = f"{metric.help.rstrip('.')}. " if metric.help else ""
        for statistic in metric.statistics:
            conversion = unit_for(metric.unit, statistic)
            unit = f", in {conversion.suffix.replace('_', ' ')}" if conversion.suffix else ""
            if metric.counter and statistic == "Sum":
                out.append(
                    Family(
                        counter_name(self.namespace, metric.name, metric.unit),
                        "counter",
                        self.labels,
                        f"{lead}CloudWatch {self.namespace} {metric.name}, Sum of each complete "
                        f"{self.period} s period added once{unit}.",
                        statistic,
                        conversion,
                    )
                )
            else:
                out.append(
                    Family(
                        gauge_name(self.namespace, metric.name, statistic, metric.unit),
                        "gauge",
                        self.labels,
                        f"{lead}CloudWatch {self.namespace} {metric.name} {statistic} of the latest "
                        f"complete {self.period} s period{unit}.",
                        statistic,
                        conversion,
                    )
                )
        return out


_JOB_DEFAULTS: Final = ("period", "length", "delay")


class ExporterConfig(_Strict):
    """The whole file. Checked when built: an instance is always safe to run."""

    region: str = Field(default="us-east-1", min_length=1)
    period: int = Field(default=60, ge=1, description="default for jobs")
    length: int = Field(default=300, ge=1, description="default for jobs")
    delay: int = Field(default=60, ge=0, description="default for jobs")
    discovery_interval: int = Field(
        default=60, ge=0, description="seconds between ListMetrics of a job (0: every scrape)"
    )
    allowed_dimensions: dict[str, tuple[str, ...]] = Field(
        description="namespace -> the dimensions it may export; bounded ones only"
    )
    jobs: tuple[JobConfig, ...]

    @field_validator("jobs")
    @classmethod
    def _some_jobs(cls, value: tuple[JobConfig, ...]) -> tuple[JobConfig, ...]:
        if not value:
            raise ValueError("name at least one job")
        return value

    @model_validator(mode="before")
    @classmethod
    def _job_defaults(cls, data: Any) -> Any:
        """A job without its own period, length or delay takes the file's."""
        if isinstance(data, dict) and isinstance(data.get("jobs"), list | tuple):
            shared = {k: data[k] for k in _JOB_DEFAULTS if k in data}
            data = {
                **data,
                "jobs": [
                    {**shared, **job} if isinstance(job, dict) else job for job in data["jobs"]
                ],
            }
        return data

    @model_validator(mode="after")
    def _bounded(self) -> ExporterConfig:
        """Refuse unbounded dimensions (the reason this exporter has a config check)."""
        problems = []
        for namespace, allowed in self.allowed_dimensions.items():
            for dimension in allowed:
                if _normalized(dimension) in UNBOUNDED_DIMENSIONS:
                    problems.append(
                        f"allowed_dimensions[{namespace!r}] names {dimension!r}, an unbounded "
                        f"dimension: {_WHY_UNBOUNDED}"
                    )
        for job in self.jobs:
            allowed = self.allowed_dimensions.get(job.namespace)
            for dimension in job.dimensions:
                if _normalized(dimension) in UNBOUNDED_DIMENSIONS:
                    problems.append(
                        f"job {job.name}: dimension {dimension!r} of namespace "
                        f"{job.namespace!r} is unbounded: {_WHY_UNBOUNDED}"
                    )
                elif allowed is None:
                    problems.append(
                        f"job {job.name}: namespace {job.namespace!r} has no entry in "
                        "allowed_dimensions; list its bounded dimensions there first"
                    )
                    break
                elif dimension not in allowed:
                    problems.append(
                        f"job {job.name}: dimension {dimension!r} is not in "
                        f"allowed_dimensions[{job.namespace!r}] ({', '.join(allowed) or 'none'})"
                        "; add it there only if its values are bounded (services, routes, "
                        "outcomes), never an id"
                    )
        if problems:
            raise PydanticCustomError(
                "unbounded_dimension", "{detail}", {"detail": "\n".join(problems)}
            )
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> ExporterConfig:
        problems = []
        jobs = [j.name for j in self.jobs]
        if len(set(jobs)) != len(jobs):
            problems.append(f"job names repeat: {jobs}")
        seen: dict[str, str] = {}
        for job in self.jobs:
            for metric in job.metrics:
                for family in job.families(metric):
                    if family.name in seen:
                        problems.append(
                            f"{family.name} comes from both {seen[family.name]} and "
                            f"{job.name}/{metric.name}"
                        )
                    seen[family.name] = f"{job.name}/{metric.name}"
                    if family.name.startswith("cloudwatch_exporter_"):
                        problems.append(f"{family.name} takes the exporter's own prefix")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def families(self) -> list[tuple[JobConfig, MetricConfig, Family]]:
        """Every family the exporter produces, in configuration order."""
        return [
            (job, metric, family)
            for job in self.jobs
            for metric in job.metrics
            for family in job.families(metric)
        ]


_WHY_UNBOUNDED = (
    "it identifies single entities (vehicles, requests, traces, callers, moments), so each "
    "value would become its own Prometheus series, without bound; refused whatever "
    "allowed_dimensions says. Publish the metric per bounded dimensions (service, route, "
    "status_class, outcome) instead"
)


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def load_config(path: str | Path, *, delay: int | None = None) -> ExporterConfig:
    """Read and check ``path``; :class:`ConfigError` lists every problem.

    ``delay`` replaces the file's and every job's ``delay``: how long after a period ends it
    counts as complete depends on the CloudWatch read, not on the metrics (CloudWatch itself
    takes a minute or two; the emulator stores a metric when it is logged).

    Example::

        config = load_config("monitoring/exporter.yaml")
        [family.name for _, _, family in config.families()][:1]   # ['evpm_records_received_total']
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(
            str(path), [f"cannot read: {exc.strerror or exc}"], ["unreadable"]
        ) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"not YAML: {exc}"], ["yaml"]) from exc
    if not isinstance(data, dict):
        raise ConfigError(str(path), ["must be a YAML mapping"], ["yaml"])
    if delay is not None:
        data["delay"] = delay
        for job in data.get("jobs") or []:
            if isinstance(job, dict):
                job.pop("delay", None)
    try:
        return ExporterConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = [line for e in errors for line in _describe(e).splitlines()]
        raise ConfigError(str(path), problems, [e["type"] for e in errors]) from exc
